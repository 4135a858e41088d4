"""The models a server offers: loaded once per configured name, shared by every task and request.

:class:`ModelRegistry` is the web app's :class:`~explainlm.services.base.ModelProvider`: a request
names a model by its configured name only; anything that looks like a filesystem path or a hub id
is refused before the name is even looked up, and one job at a time runs each model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explainlm.errors import UserError
from explainlm.server.config import ModelSpec
from explainlm.server.errors import ApiError
from explainlm.services.base import LocalModels


def looks_like_path(name: str) -> bool:
    """A path (``/``, ``\\``, ``~``, ``.``) or an ``owner/model`` hub id."""
    return any(c in name for c in "/\\") or name.startswith(("~", "."))


class ModelRegistry(LocalModels):
    """Loads each configured model once; hands out task wrappers and a lock per model."""

    def __init__(self, specs: Sequence[ModelSpec], device: str | None = None) -> None:
        super().__init__(device)
        self.specs = {s.name: s for s in specs}
        self._model_locks = {name: threading.RLock() for name in self.specs}

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def check(self, name: str | None) -> str:
        """The configured name a request asks for (default: the first); 4xx otherwise."""
        if name is None or name == "":
            return self.names[0]
        if looks_like_path(name):
            raise ApiError(
                403,
                "models are chosen by name from the server's list; paths and hub ids are not "
                f"accepted (available: {', '.join(self.names)})",
            )
        if name not in self.specs:
            raise ApiError(
                400, f"unknown model {name!r}; this server offers: {', '.join(self.names)}"
            )
        return name

    def source(self, name: str) -> str:
        return self.specs[self.check(name)].source

    def lock(self, name: str) -> Any:
        """Hold while running a model: one request at a time per model."""
        return self._model_locks[self.check(name)]

    def kind_of(self, name: str) -> str | None:
        """``causal_lm``, ``sequence_classifier`` or ``encoder``, read without loading the weights
        (its config); None when it cannot be told."""
        from explainlm.models.sources import BUILTINS, resolve_source

        w = self._wrappers.get(name)
        if w is not None:
            return getattr(w, "kind", None)
        source = self.specs[self.check(name)].source
        if source in BUILTINS:
            return BUILTINS[source].kind
        try:
            return resolve_source(source).kind if Path(source).is_dir() else None
        except UserError:
            return None

    def causal_lms(self) -> list[str]:
        """The configured causal language models (what-if infill, anchors, LM audits)."""
        return [n for n in self.names if self.kind_of(n) == "causal_lm"]

    def first_causal_lm(self, purpose: str) -> str:
        """The first configured causal LM: the default model of whatever ``purpose`` names (an
        LM audit, a what-if search's infill); a one-line 400 saying what needed one when the
        server offers none."""
        lms = self.causal_lms()
        if not lms:
            raise ApiError(
                400,
                f"{purpose} needs a causal language model and this server offers none "
                f"(its models: {', '.join(self.names)})",
            )
        return lms[0]

    def describe(self) -> list[dict[str, Any]]:
        """``GET /api/models``: name, whether it is loaded, and its kind (from its config)."""
        out = []
        for name in self.specs:
            kind = self.kind_of(name)
            loaded = name in self._wrappers
            out.append({"name": name, "loaded": loaded, "kind": kind, "tasks": _tasks(kind)})
        return out


def _tasks(kind: str | None) -> list[str]:
    if kind == "causal_lm":
        return ["zero_shot", "generator"]
    if kind == "sequence_classifier":
        return ["sequence_classifier"]
    return []
