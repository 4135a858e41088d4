"""The local web app: a FastAPI JSON API that mirrors the CLI, and a browser UI (``explainlm serve``).

>>> from explainlm.server import ServerConfig, create_app       # doctest: +SKIP
>>> app = create_app(ServerConfig(models=parse_models("smollm2-135m")))   # doctest: +SKIP
"""

from __future__ import annotations

from explainlm.server.app import create_app
from explainlm.server.config import Limits, ModelSpec, ServerConfig, check_bind, parse_models

__all__ = ["Limits", "ModelSpec", "ServerConfig", "check_bind", "create_app", "parse_models"]
