"""The local web app: a FastAPI JSON API that mirrors the CLI, and a browser UI (``explainlm serve``).

Needs the ``server`` extra (FastAPI, uvicorn); the names below load lazily, so the ``serve``
command can say so in one line when they are missing.

>>> from explainlm.server import ServerConfig, create_app, parse_models      # doctest: +SKIP
>>> app = create_app(ServerConfig(models=parse_models("smollm2-135m")))      # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from explainlm.server.config import Limits, ModelSpec, ServerConfig, check_bind, parse_models

__all__ = ["Limits", "ModelSpec", "ServerConfig", "check_bind", "create_app", "parse_models"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from explainlm.server.app import create_app

        return create_app
    raise AttributeError(f"module 'explainlm.server' has no attribute {name!r}")
