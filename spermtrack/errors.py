"""Errors a user can act on. The CLI prints ``str(err)`` on one line and exits non-zero."""

from __future__ import annotations


class SpermtrackError(Exception):
    """Base class: every error the CLI turns into one clear line on stderr."""


class InputFileError(SpermtrackError, ValueError):
    """A file the user gave is missing, unreadable or malformed.

    The message names the file and, where it applies, the line (1-based) and what is wrong.
    """

    def __init__(self, path, problem: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class VideoError(SpermtrackError):
    """A video cannot be opened or has no usable video stream."""


class VideoDecodeError(VideoError):
    """Decoding stopped early. ``n_good`` frames were decoded (and yielded) before the failure."""

    def __init__(self, path, n_good: int, detail: str = ""):
        self.path = str(path)
        self.n_good = int(n_good)
        msg = (
            f"frame {n_good} of {self.path} could not be decoded (truncated or corrupt file?); "
            f"{n_good} frames before it were good"
        )
        if detail:
            msg += f" [{detail}]"
        super().__init__(msg)


class ParameterError(SpermtrackError, ValueError):
    """A parameter is out of its sensible range (names the parameter, the value and the range)."""
