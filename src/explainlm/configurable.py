"""The shared base of registry entries (methods, metrics): named, cited, validated parameters.

A class declares its parameters once, in ``schema``: each a :class:`Param` with a type, a default
and the allowed values (a range, or choices). That one declaration validates values (a bad value is
a one-line :class:`~explainlm.errors.UserError` naming the parameter and what it accepts), gives
the defaults, and describes the parameters to the CLI, the web API and the docs
(:meth:`Configurable.param_schema`, a JSON Schema object).

>>> class Demo(Configurable):
...     name = "demo"
...     schema = {"steps": Param(8, int, ge=1, help="integration steps")}
>>> Demo(steps=4).params
{'steps': 4}
>>> Demo(steps=2.5)
Traceback (most recent call last):
...
explainlm.errors.UserError: demo.steps must be an integer ≥ 1, got 2.5
>>> Demo.param_schema()["properties"]["steps"]
{'type': 'integer', 'default': 8, 'minimum': 1, 'description': 'integration steps'}

Classes that still declare only ``defaults`` (a dict of default values) keep working: their
parameters accept any value and :meth:`Configurable.validate` checks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from explainlm.errors import UserError

_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}
_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclass(frozen=True)
class Param:
    """One parameter: ``default``, ``type`` (int, float, str, bool or ``None`` for any value),
    bounds (``ge``/``gt``/``le``/``lt``), ``choices``, ``nullable`` (``None`` allowed) and ``help``.

    With both ``choices`` and a ``type``, a value is either one of the choices or of the type
    (attention's ``layer``: ``"last"``, ``"mean"`` or a layer index).
    """

    default: Any
    type: type | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    help: str = ""

    def describe(self) -> str:
        """What the parameter accepts, in words: ``an integer ≥ 1``, ``one of remove, mask, pad``."""
        parts = []
        if self.choices is not None:
            parts.append("one of " + ", ".join(str(c) for c in self.choices))
        if self.type is not None:
            word = _WORDS.get(self.type, self.type.__name__)
            bounds = [
                f"{sym} {_num(v)}"
                for sym, v in (("≥", self.ge), (">", self.gt), ("≤", self.le), ("<", self.lt))
                if v is not None
            ]
            parts.append(" ".join([word, " and ".join(bounds)]).strip())
        if self.nullable:
            parts.append("null")
        return " or ".join(parts) or "any value"

    def coerce(self, owner: str, name: str, value: Any) -> Any:
        """The value converted to the parameter's type, or a :class:`UserError`."""
        if value is None and (self.nullable or self.default is None and self.type is None):
            return None
        if self.choices is not None and _in(value, self.choices):
            return value
        if self.type is None:
            if self.choices is None:
                return value
            return self._fail(owner, name, value)
        converted = _convert(value, self.type)
        if converted is None or not self._in_range(converted):
            return self._fail(owner, name, value)
        return converted

    def _in_range(self, v: Any) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return True
        return (
            (self.ge is None or v >= self.ge)
            and (self.gt is None or v > self.gt)
            and (self.le is None or v <= self.le)
            and (self.lt is None or v < self.lt)
        )

    def _fail(self, owner: str, name: str, value: Any) -> Any:
        raise UserError(f"{owner}.{name} must be {self.describe()}, got {value!r}")

    def json_schema(self) -> dict[str, Any]:
        """A JSON Schema fragment (``type``, ``default``, ``minimum``…, ``enum``, ``description``)."""
        out: dict[str, Any] = {}
        types = [_JSON_TYPES[self.type]] if self.type in _JSON_TYPES else []
        if self.choices is not None:
            types = sorted({_JSON_TYPES.get(type(c), "string") for c in self.choices} | set(types))
        if self.nullable:
            types.append("null")
        if types:
            out["type"] = types[0] if len(types) == 1 else types
        out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        for key, v in (
            ("minimum", self.ge),
            ("exclusiveMinimum", self.gt),
            ("maximum", self.le),
            ("exclusiveMaximum", self.lt),
        ):
            if v is not None:
                out[key] = v
        if self.choices is not None:
            out["enum"] = list(self.choices)
        if self.help:
            out["description"] = self.help
        return out


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _in(value: Any, choices: tuple[Any, ...]) -> bool:
    try:
        return any(value == c and type(value) is type(c) for c in choices)
    except Exception:  # noqa: BLE001 - an unhashable or odd value is simply not a choice
        return False


def _convert(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (integral floats and numeric strings accepted), or ``None``."""
    if isinstance(value, bool):
        return value if kind is bool else None
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None
    if kind is str:
        return value if isinstance(value, str) else None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if kind is int:
        return int(value) if float(value).is_integer() else None
    return float(value) if kind is float else None


class Configurable:
    """``Cls(**params)``: unknown names and bad values are a :class:`UserError`.

    Subclasses declare ``schema`` (name → :class:`Param`); :meth:`validate` adds checks that involve
    several parameters. ``defaults`` is derived from the schema.
    """

    name: ClassVar[str] = ""
    schema: ClassVar[dict[str, Param]] = {}
    defaults: ClassVar[dict[str, Any]] = {}
    citation: ClassVar[str] = ""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        own_schema = "schema" in cls.__dict__
        own_defaults = "defaults" in cls.__dict__
        if own_schema:
            cls.defaults = {k: p.default for k, p in cls.schema.items()}
        elif own_defaults:  # a legacy declaration: any value, checked by validate()
            cls.schema = {k: Param(v) for k, v in cls.defaults.items()}

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.schema)
        if unknown:
            raise UserError(
                f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.schema)) or 'none'}"
            )
        values = {**self.defaults, **params}
        self.params = {
            k: self.schema[k].coerce(self.name, k, v) if k in params else v
            for k, v in values.items()
        }
        self.validate()

    def validate(self) -> None:
        """Check parameter values together (subclasses raise :class:`UserError`)."""

    @classmethod
    def param_schema(cls) -> dict[str, Any]:
        """The parameters as a JSON Schema object (for the CLI's help, the web API and the docs)."""
        return {
            "title": cls.name,
            "type": "object",
            "properties": {k: p.json_schema() for k, p in cls.schema.items()},
            "additionalProperties": False,
        }
