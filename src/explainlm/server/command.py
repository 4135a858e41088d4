"""``explainlm serve``: the local web app (JSON API + browser UI) in one process.

The command belongs to the web app, not to the CLI package: the ``explainlm`` command finds it
through the ``explainlm.commands`` entry point (see ``pyproject.toml``), so neither front-end
imports the other.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from explainlm.errors import UserError


def serve_cmd(
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    models: Annotated[
        str,
        typer.Option(help="Comma-separated models to offer: built-in names, PATHs or NAME=PATH."),
    ] = "smollm2-135m",
    token: Annotated[
        str | None,
        typer.Option(
            envvar="EXPLAINLM_TOKEN",
            help="Bearer token every /api call must send (required off loopback).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Background worker threads.")] = 2,
    queue_size: Annotated[int, typer.Option(help="Jobs that may wait; more get HTTP 429.")] = 8,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, …")] = None,
) -> None:
    """Serve the browser UI and the JSON API (OpenAPI reference at /docs).

    Examples:

        explainlm serve

        explainlm serve --models smollm2-135m,sst2=models/minilm-sst2 --port 8080

        explainlm serve --host 0.0.0.0 --token "$(openssl rand -hex 16)"
    """
    from explainlm.server.config import ServerConfig, check_bind, parse_models

    check_bind(host, token)
    if workers < 1 or queue_size < 0:
        raise UserError("--workers must be at least 1 and --queue-size at least 0")
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    try:
        import uvicorn

        from explainlm.server.app import create_app
    except ImportError as e:  # pragma: no cover - an install without the server extra
        raise UserError(
            f"explainlm serve needs the server extra ({e.name or e} is missing): "
            "pip install 'explainlm[server]'"
        ) from None
    cfg = ServerConfig(
        models=parse_models(models),
        token=token,
        workers=workers,
        queue_size=queue_size,
        device=device,
    )
    app = create_app(cfg)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    print(
        f"explainlm serving {', '.join(cfg.model_names)} on http://{shown}:{port}/ "
        "(API reference: /docs)",
        file=sys.stderr,
        flush=True,
    )
    # On SIGTERM/Ctrl-C, requests still waiting get 5 s; then running jobs are interrupted (their
    # runs marked `interrupted`, resumable) and the server exits.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``explainlm`` command (the ``explainlm.commands`` entry point)."""
    app.command("serve")(serve_cmd)
