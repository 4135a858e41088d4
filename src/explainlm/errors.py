"""Error types. A :class:`UserError` is the user's to fix; the CLI prints it without a traceback."""

from __future__ import annotations


class ExplainlmError(Exception):
    """Base class of every error raised on purpose by explainlm."""


class UserError(ExplainlmError, ValueError):
    """Bad input: an empty text, an unknown model or label, a malformed file, a missing directory."""


class UnknownModelError(UserError):
    """A model name that is neither built in, a local directory, nor a reachable hub id."""


class UnknownLabelError(UserError):
    """A label that the model does not have."""


class DataFormatError(UserError):
    """A malformed data file; the message names the file and the line."""

    def __init__(self, path: object, line: int | None, message: str) -> None:
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
