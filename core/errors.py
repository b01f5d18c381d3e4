"""How a problem reads to the user: one line, the same in the command line and the app."""
from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """The error as one line (all of its text, never an empty message), naming the file for OS errors."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if not isinstance(exc, ModuleNotFoundError) else f"{text} (install the optional dependency)"
