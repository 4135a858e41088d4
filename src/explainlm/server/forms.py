"""Form descriptions of request bodies: the UI builds its option forms from the request models
themselves, so a form offers exactly the options the service validates (names, types, choices,
defaults and ranges), and a new option appears without a UI change.

>>> from pydantic import BaseModel, Field
>>> from typing import Literal
>>> class R(BaseModel):
...     level: float = Field(0.95, gt=0.5, lt=1.0, description="confidence level")
...     correction: Literal["holm", "none"] = "holm"
>>> [(f["name"], f["type"]) for f in form_fields(R)]
[('level', 'float'), ('correction', 'choice')]
>>> form_fields(R)[0]["min"], form_fields(R)[1]["choices"]
(0.5, ['holm', 'none'])
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel

MODEL_FIELDS = {"model", "classifier", "baseline", "lm", "reference"}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True); an ``Annotated`` type → its base."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            inner, _ = _unwrap(args[0])
            return inner, True
    return annotation, False


def _kind(name: str, annotation: Any) -> tuple[str, list[Any] | None]:
    base, _ = _unwrap(annotation)
    origin = typing.get_origin(base)
    if name in MODEL_FIELDS:
        return "model", None
    if origin is Literal:
        return "choice", list(typing.get_args(base))
    if origin is list:
        (item,) = typing.get_args(base) or (str,)
        item, _ = _unwrap(item)
        if typing.get_origin(item) is Literal:
            return "multi", list(typing.get_args(item))
        return "list", None
    if base is bool:
        return "bool", None
    if base is int:
        return "int", None
    if base is float:
        return "float", None
    return "text", None


def _bounds(metadata: Iterable[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in metadata:
        for attr, key in (("ge", "min"), ("gt", "min"), ("le", "max"), ("lt", "max")):
            value = getattr(m, attr, None)
            if value is not None:
                out[key] = value
    return out


def form_fields(model: type[BaseModel], hidden: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One entry per field: ``name``, ``type`` (text, int, float, bool, choice, multi, list, model),
    ``choices``, ``default``, ``required``, ``optional`` (None allowed), ``description``, and
    ``min``/``max`` where the field has bounds."""
    skip = set(hidden)
    out = []
    for name, field in model.model_fields.items():
        if name in skip or (field.alias and field.alias in skip):
            continue
        kind, choices = _kind(name, field.annotation)
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        entry: dict[str, Any] = {
            "name": field.alias or name,
            "type": kind,
            "default": default,
            "required": field.is_required(),
            "optional": _unwrap(field.annotation)[1],
            "description": field.description or "",
            **_bounds(field.metadata),
        }
        if choices is not None:
            entry["choices"] = choices
        out.append(entry)
    return out
