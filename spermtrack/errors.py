"""Errors a user can act on. The CLI prints ``str(err)`` on one line and exits non-zero.

OS errors (disk full, quota, a file that cannot be read or written) are described by
:func:`describe_os_error` / :func:`user_message`, which name the file the user asked for rather
than the temporary file of an atomic write."""

from __future__ import annotations

import errno
import os
import re


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


#: ``.<name>.<8 random chars>.tmp[<suffix>]``, the temporary file of an atomic write
#: (:func:`spermtrack.io.atomic.atomic_path`) beside its final file, anywhere in a message
_ATOMIC_TMP_IN_TEXT = re.compile(
    r"(?:(?<=[/\\'\"\s(])|^)"                                   # after a separator, quote, space or (
    r"\.(?P<name>[^/\\'\"\s]+?)\.[A-Za-z0-9_]{8}\.tmp(?:\.[A-Za-z0-9]+)?"  # .<name>.<random>.tmp<suffix>
    r"(?=$|[/\\'\"\s),:;])")


def hide_temp_names(text: str) -> str:
    """``text`` with every atomic-write temporary file name replaced by its final name (also
    the temporary file of a temporary file: an atomic write into another one's path)."""
    for _ in range(3):
        clean = _ATOMIC_TMP_IN_TEXT.sub(lambda m: m.group("name"), text)
        if clean == text:
            break
        text = clean
    return text


def user_path(name: str | os.PathLike | None) -> str | None:
    """The file a user asked for: an atomic write's temporary name becomes its final name."""
    if not isinstance(name, (str, bytes, os.PathLike)):
        return None
    return hide_temp_names(os.fsdecode(name))


def describe_os_error(err: OSError) -> str | None:
    """One line for an OS error a user can act on, naming the final file (never a temporary one).

    Disk full (``ENOSPC``) and quota exceeded (``EDQUOT``) get a line even without a file name;
    any other error gets one only when it names a file. ``None``: not one of those (a bug).
    """
    name = user_path(err.filename)
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        what = "no space left on device" if err.errno == errno.ENOSPC else "disk quota exceeded"
        return f"{what} while writing {name or 'the output'}: free some space or write to another folder"
    if name is None:
        return None
    other = user_path(err.filename2)
    return f"{name}{f' -> {other}' if other else ''}: {reason}"


def user_message(err: BaseException) -> str:
    """``str(err)`` for a message shown to a user or recorded in a result, with OS errors
    described by :func:`describe_os_error` (final file names, disk full said plainly)."""
    if isinstance(err, OSError):
        return describe_os_error(err) or hide_temp_names(str(err))
    return hide_temp_names(str(err))
