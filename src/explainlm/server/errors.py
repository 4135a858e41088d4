"""The server's error type (an HTTP status and a message, rendered as ``{"error": message}``)
and the handlers that turn every failure into that shape, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from explainlm.errors import UserError
from explainlm.progress import Cancelled

log = logging.getLogger(__name__)

JobCancelled = Cancelled  # the name jobs used before the service layer's Progress


class ApiError(Exception):
    """An error with an HTTP status; ``headers`` are added to the response (e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": desc, "content": {"application/json": {"example": {"error": desc}}}}
    for code, desc in (
        (400, "bad input"),
        (401, "missing or wrong bearer token"),
        (403, "a path or hub id instead of a model name"),
        (413, "request or text too large"),
        (429, "queue full (see Retry-After)"),
        (507, "the server keeps as many uploaded files as it may"),
    )
}


def public_message(message: str) -> str:
    """``message`` without the server's own folders (the run store's path, its home)."""
    from explainlm.paths import home_dir

    home = str(home_dir())
    store = f"{home}/runs.duckdb"
    return (
        message.replace(f" in {store}", "")
        .replace(store, "the run store")
        .replace(home, "$EXPLAINLM_HOME")
    )


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": public_message(message)}, status_code=status, headers=headers)


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """A bad value a request model's validator named (a UserError, or a ValueError's sentence) is
    400; malformed JSON, wrong types, values out of range and unknown fields are 422."""
    parts = []
    for err in exc.errors()[:5]:
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, UserError):
            return error_response(400, str(cause))
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "value_error":
            return error_response(400, message if where == "body" else f"{where}: {message}")
        parts.append(f"{where}: {message}")
    return error_response(422, "invalid request: " + "; ".join(parts))


def install_error_handlers(app: FastAPI) -> None:
    """Every error is JSON ``{"error": message}``; internal errors never show their details."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")
