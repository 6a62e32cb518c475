"""A one-line progress bar on stderr, shared by every long phase (streaming pass, crops,
annotated video, synthetic rendering)."""

from __future__ import annotations

import sys


class ProgressBar:
    """A one-line progress bar on stderr: frames done, frames/s and ETA.

    On a terminal the line is redrawn in place; otherwise (logs, batch workers) a line is printed
    at every 25 % so logs stay short.

    Args:
        label: text before the bar (e.g. the video name).
        stream: where to write (default ``sys.stderr``).
        enabled: False makes every call a no-op.
    """

    def __init__(self, label: str, *, stream=None, enabled: bool = True, width: int = 28):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_quarter = -1
        self._drawn = False

    def __call__(self, done: int, total: int, elapsed_s: float) -> None:
        if not self.enabled:
            return
        total = max(total, done, 1)
        rate = done / elapsed_s if elapsed_s > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("nan")
        frac = done / total
        fill = int(round(frac * self.width))
        line = (f"{self.label} [{'#' * fill}{'.' * (self.width - fill)}] {done}/{total} frames "
                f"{rate:6.1f} frames/s ETA {eta:4.0f} s")
        if self.tty:
            self.stream.write("\r" + line)
            self._drawn = True
        elif int(frac * 4) > self._last_quarter:
            self._last_quarter = int(frac * 4)
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
