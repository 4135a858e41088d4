"""The server's own limits, checked before any work is queued (the request models check the rest).

Values are validated by the service requests themselves (method names and parameters, ranges,
labels); this module adds what only a shared server needs: size limits on texts, methods and
parameters, and no access to its files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from explainlm.server.config import Limits
from explainlm.server.errors import ApiError


def refuse_paths(body: Any) -> None:
    """Fields that read or write files on the server are the CLI's, never the web API's."""
    for name in getattr(body, "path_fields", ()):
        if getattr(body, name, None) is not None:
            raise ApiError(403, f"{name}: this server does not read or write files for requests")


WEB_PRECISIONS = ("auto", "fp32")  # bf16 / int8 would make the server keep another copy of a model


def check_precision(body: Any) -> None:
    """A web request runs in ``auto`` (the server's own measured choice) or ``fp32``: a client
    cannot make the server build and keep bf16 or int8 copies of the models it serves."""
    precision = getattr(body, "precision", None)
    if precision is not None and precision not in WEB_PRECISIONS:
        raise ApiError(
            400,
            f"precision {precision!r}: this server takes {' or '.join(WEB_PRECISIONS)} "
            "(auto uses the precision measured fastest on it)",
        )
    if getattr(body, "precision_plan", None) is not None:
        raise ApiError(400, "precision_plan is recorded by the server when a run starts, not sent")


def check_resumed_precision(run_id: str) -> None:
    """A run resumed through the web asked for ``auto`` or ``fp32`` when it started (a run the
    CLI started in bf16 or int8 is resumed with the CLI)."""
    from explainlm.store import open_store

    params = open_store().get_run(run_id).params
    asked = (params.get("request") or params).get("precision", "fp32")
    if asked not in WEB_PRECISIONS:
        raise ApiError(
            400,
            f"run {run_id} runs in precision {asked!r}, which this server does not take; "
            f"resume it with the CLI: explainlm explain --resume {run_id}",
        )


def check_texts(texts: Sequence[str], limits: Limits, what: str = "text") -> None:
    """Non-empty texts within the count and length limits (413 when too much)."""
    if not texts:
        raise ApiError(400, f"no {what} given: send 'text' or 'texts'")
    if len(texts) > limits.max_texts:
        raise ApiError(
            413, f"too many texts: {len(texts)} (at most {limits.max_texts} per request)"
        )
    for i, t in enumerate(texts):
        if not t.strip():
            raise ApiError(400, f"{what} {i + 1} is empty: nothing to predict or explain")
        if len(t) > limits.max_text_chars:
            raise ApiError(
                413,
                f"{what} {i + 1} is too long: {len(t)} characters "
                f"(at most {limits.max_text_chars} per text)",
            )


def check_max_new_tokens(n: int, limits: Limits) -> None:
    if n > limits.max_new_tokens:
        raise ApiError(
            400, f"max_new_tokens is {n}; this server allows at most {limits.max_new_tokens}"
        )


def check_batch_tokens(n: int | None, limits: Limits) -> None:
    """``None`` (the size measured for the machine, at most 4,096) is always allowed."""
    if n is not None and n > limits.max_batch_tokens:
        raise ApiError(
            400, f"max_batch_tokens is {n}; this server allows at most {limits.max_batch_tokens}"
        )


def check_methods(
    methods: Sequence[str], params: dict[str, dict[str, Any]], limits: Limits
) -> None:
    """At most ``limits.max_methods`` methods; no numeric parameter above the server's limit
    (parameters such as ``n_samples`` and ``steps`` size the work)."""
    if len(methods) > limits.max_methods:
        raise ApiError(
            400, f"too many methods: {len(methods)} (at most {limits.max_methods} per request)"
        )
    for method, values in params.items():
        for key, value in values.items():
            items = value if isinstance(value, (list, tuple)) else [value]
            for v in items:
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    if abs(v) > limits.max_method_param:
                        raise ApiError(
                            400,
                            f"parameter {method}.{key}={v} is above this server's limit "
                            f"({limits.max_method_param})",
                        )
