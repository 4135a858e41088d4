"""Connecting the driver to a Ray cluster (or starting one on this machine), quietly."""

from __future__ import annotations

import logging
import os
from typing import Any

from explainlm.errors import UserError


def require_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data reads the input
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install 'explainlm[ray]'") from None
    return ray


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (``auto``, ``ray://HOST:PORT``, ``HOST:PORT``), or start
    one on this machine when ``None`` (and ``RAY_ADDRESS`` is unset). True if this call started
    or joined it (so :func:`disconnect` should leave it)."""
    ray = require_ray()
    quiet_ray_data()
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address is None and not os.environ.get("RAY_ADDRESS"):
            ray.init(include_dashboard=False, **kw)
        else:
            ray.init(address=address, **kw)
    except ConnectionError as e:
        raise UserError(
            f"cannot reach the Ray cluster at {address or 'RAY_ADDRESS'}: {e}"
        ) from None
    return True


def disconnect(joined: bool) -> None:
    if joined:
        import ray

        ray.shutdown()


def quiet_ray_data() -> None:
    """Ray Data in input order, without its own progress bars and INFO logs (ours is the bar)."""
    from ray.data import DataContext

    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its "progress bars disabled" notice
    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False


def cluster_resources() -> dict[str, float]:
    import ray

    return {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
