"""The shared base of registry entries (methods, metrics): named, cited, validated parameters.

>>> class Demo(Configurable):
...     name, defaults = "demo", {"steps": 8}
>>> Demo(steps=4).params
{'steps': 4}
"""

from __future__ import annotations

from typing import Any, ClassVar

from explainlm.errors import UserError


class Configurable:
    """``Cls(**params)``: unknown parameter names are a :class:`UserError`; values go to :meth:`validate`."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    citation: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise UserError(
                f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.defaults)) or 'none'}"
            )
        self.params = {**self.defaults, **params}
        self.validate()

    def validate(self) -> None:
        """Check parameter values (subclasses raise :class:`UserError`)."""
