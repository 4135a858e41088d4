"""The server's error type: an HTTP status and a message, rendered as ``{"error": message}``."""

from __future__ import annotations


class ApiError(Exception):
    """An error with an HTTP status; ``headers`` are added to the response (e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class JobCancelled(Exception):
    """Raised inside a job's work at its next checkpoint once the job was cancelled."""
