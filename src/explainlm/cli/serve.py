"""``explainlm serve``: the local web app (JSON API + browser UI) in one process."""

from __future__ import annotations

from typing import Annotated

import typer

from explainlm.cli.common import err_console
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
    from explainlm.server import ServerConfig, check_bind, create_app, parse_models

    check_bind(host, token)
    if workers < 1 or queue_size < 0:
        raise UserError("--workers must be at least 1 and --queue-size at least 0")
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - an install without the server extra
        raise UserError("explainlm serve needs uvicorn: pip install 'explainlm[server]'") from None
    cfg = ServerConfig(
        models=parse_models(models),
        token=token,
        workers=workers,
        queue_size=queue_size,
        device=device,
    )
    app = create_app(cfg)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    err_console.print(
        f"explainlm serving {', '.join(cfg.model_names)} on http://{shown}:{port}/ "
        f"(API reference: /docs)",
        soft_wrap=True,
        markup=False,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
