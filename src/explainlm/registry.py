"""One registry type for everything chosen by name: methods, metrics, datasets, audits, services.

A :class:`Registry` maps names to entries (classes, or functions returning a spec). Unknown names
are a :class:`~explainlm.errors.UserError` that lists the known ones, so every front-end reports a
typo the same way.

>>> METHODS_DEMO: Registry[type] = Registry("method")
>>> @METHODS_DEMO.register("toy")
... class Toy: pass
>>> METHODS_DEMO["toy"] is Toy, "toy" in METHODS_DEMO, METHODS_DEMO.names()
(True, True, ['toy'])
>>> METHODS_DEMO["tyo"]
Traceback (most recent call last):
...
explainlm.errors.UserError: unknown method 'tyo'; known: toy
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from explainlm.errors import UserError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Named entries of one kind (``kind`` is used in error messages: "unknown method 'x'")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@REG.register()`` (uses the entry's ``name`` attribute) or ``("name")``."""

        def add(entry: T) -> T:
            key = name or getattr(entry, "name", None)
            if not key:
                raise ValueError(f"a {self.kind} needs a name to be registered")
            self.add(str(key), entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise UserError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, default: Any = None) -> Any:
        return self._entries.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def remove(self, name: str) -> T:
        """Unregister ``name`` (tests that register a temporary entry clean up with this)."""
        if name not in self._entries:
            raise KeyError(name)
        return self._entries.pop(name)

    @contextmanager
    def temporarily(self, name: str, entry: T) -> Iterator[T]:
        """``with REG.temporarily("toy", Toy): …`` — registered inside the block only."""
        self.add(name, entry)
        try:
            yield entry
        finally:
            self.remove(name)

    def describe(self) -> list[dict[str, Any]]:
        """Each entry as JSON: name, one-line summary, citation and parameters with defaults.

        Entries say what they are through ``description`` (or the first line of their docstring),
        ``citation`` and ``defaults`` (the :class:`~explainlm.configurable.Configurable` contract);
        a ``describe()`` classmethod on an entry, when present, adds to that (or overrides it).
        """
        return [describe_entry(name, entry) for name, entry in self._entries.items()]


def describe_entry(name: str, entry: Any) -> dict[str, Any]:
    """See :meth:`Registry.describe`."""
    doc = getattr(entry, "description", None) or (getattr(entry, "__doc__", None) or "")
    out: dict[str, Any] = {"name": name, "description": doc.strip().split("\n\n")[0]}
    out["description"] = " ".join(out["description"].split())
    for attr in ("family", "citation", "higher_is_better", "needs"):
        value = getattr(entry, attr, None)
        if value not in (None, ""):
            out[attr] = list(value) if isinstance(value, tuple) else value
    defaults = getattr(entry, "defaults", None)
    if isinstance(defaults, Mapping):
        out["params"] = {k: _param_schema(v) for k, v in defaults.items()}
    extra = getattr(entry, "describe", None)
    if inspect.ismethod(extra):  # a classmethod on a class entry, a method on an instance entry
        out.update(extra())
    return out


def _param_schema(default: Any) -> dict[str, Any]:
    """A parameter's default and JSON type (from the default's Python type)."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
    kind = next((k for t, k in kinds.items() if type(default) is t), None)
    if isinstance(default, (list, tuple)):
        kind = "array"
        default = list(default)
    elif default is not None and kind is None:
        default = repr(default)
    return {"default": default, "type": kind}
