"""ASGI middleware in front of every request: bearer-token check, body-size limit, security headers.

* ``/api/*`` needs ``Authorization: Bearer TOKEN`` when the server has a token (401 otherwise).
* A body over ``max_body`` bytes is refused with 413 before the app sees it (the declared
  Content-Length is checked first; a chunked body is counted while it is read).
* Without a token only loopback ``Host`` headers are served (``localhost``, ``127.0.0.1``, ``[::1]``,
  with any port): a web page elsewhere cannot reach the server through DNS rebinding (403).
* Every response gets ``nosniff``, ``no-referrer`` and ``DENY`` framing; pages get a strict
  Content-Security-Policy (scripts and styles only from this server, no inline script).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

Scope = dict[str, Any]


async def _send_json(
    send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *BASE_HEADERS,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


def loopback_host(value: bytes) -> bool:
    """A ``Host`` header naming this machine's loopback (any port); an absent one is refused."""
    host = value.decode("latin-1").strip().lower()
    if host.startswith("["):
        name = host.split("]")[0] + "]"
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in LOOPBACK_HOSTS or name.startswith("127.") and name.count(".") == 3


class Guard:
    """See the module docstring."""

    def __init__(self, app: Any, token: str | None, max_body: int) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.token is None and not loopback_host(headers.get(b"host", b"")):
            await _send_json(
                send,
                403,
                "this server answers only to localhost without a token (Host header refused); "
                "open it as http://localhost:PORT/ or start it with --token",
                [],
            )
            return
        if path.startswith("/api") and self.token is not None and not self._authorised(headers):
            await _send_json(
                send,
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                [(b"www-authenticate", b'Bearer realm="explainlm"')],
            )
            return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_body
            except ValueError:
                await _send_json(send, 400, "bad Content-Length header", [])
                return
            if too_big:
                await _send_json(send, 413, self._too_big(int(declared)), [])
                return
        body, more = b"", True
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            while more:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
                if len(body) > self.max_body:
                    await _send_json(send, 413, self._too_big(len(body)), [])
                    return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        page = not path.startswith(("/api", "/openapi.json"))

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                extra = list(BASE_HEADERS)
                if page:
                    extra.append((b"content-security-policy", CSP.encode()))
                else:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(
            scope,
            replay if scope.get("method") in ("POST", "PUT", "PATCH") else receive,
            send_with_headers,
        )

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        value = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, given = value.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        return secrets.compare_digest(given.strip().encode(), (self.token or "").encode())

    def _too_big(self, n: int) -> str:
        return (
            f"request body too large: {n} bytes (at most {self.max_body} bytes); "
            "send fewer or shorter texts"
        )
