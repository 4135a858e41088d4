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

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

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

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)
