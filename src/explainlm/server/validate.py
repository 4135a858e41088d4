"""Request checks made before any work is queued: limits, method names and parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from explainlm.errors import UserError
from explainlm.server.config import Limits
from explainlm.server.errors import ApiError


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


def check_batch_tokens(n: int, limits: Limits) -> None:
    if n > limits.max_batch_tokens:
        raise ApiError(
            400, f"max_batch_tokens is {n}; this server allows at most {limits.max_batch_tokens}"
        )


def normalise_params(
    raw: dict[str, dict[str, Any]] | list[str] | None,
) -> dict[str, dict[str, Any]]:
    """``{'lime': {'n_samples': 200}}`` or ``['lime.n_samples=200']`` → nested dict."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        from explainlm.cli.explain import parse_params

        try:
            return parse_params(raw)
        except UserError as e:
            raise ApiError(400, str(e)) from None
    return {k: dict(v) for k, v in raw.items()}


def _check_sizes(name: str, value: Any, limit: int) -> None:
    """No numeric parameter (or list of them) above ``limit``: they size the work."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > limit:
            raise ApiError(400, f"parameter {name}={v} is above this server's limit ({limit})")


def check_methods(
    methods: Sequence[str] | None,
    default: Sequence[str],
    params: dict[str, dict[str, Any]],
    limits: Limits,
) -> list[str]:
    """Known method names with valid parameters, at most ``limits.max_methods`` of them."""
    from explainlm.methods import get_method

    chosen = list(methods or default)
    if not chosen:
        raise ApiError(400, "no method given")
    if len(chosen) > limits.max_methods:
        raise ApiError(
            400, f"too many methods: {len(chosen)} (at most {limits.max_methods} per request)"
        )
    if len(set(chosen)) != len(chosen):
        raise ApiError(400, "a method is listed twice")
    unknown = set(params) - set(chosen)
    if unknown:
        raise ApiError(400, f"params for a method not requested: {', '.join(sorted(unknown))}")
    for m in chosen:
        for k, v in params.get(m, {}).items():
            _check_sizes(f"{m}.{k}", v, limits.max_method_param)
        try:
            get_method(m, **params.get(m, {}))
        except UserError as e:
            raise ApiError(400, str(e)) from None
        except TypeError as e:
            raise ApiError(400, f"bad parameters for {m}: {e}") from None
    return chosen
