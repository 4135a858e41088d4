"""The models a server offers: loaded once per name, shared by every task and request.

A model is named in a request by its configured name only; anything that looks like a filesystem
path or a hub id is refused before the name is even looked up.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from explainlm.server.config import ModelSpec
from explainlm.server.errors import ApiError

MAX_TASKS = 32


def looks_like_path(name: str) -> bool:
    """A path (``/``, ``\\``, ``~``, ``.``) or an ``owner/model`` hub id."""
    return any(c in name for c in "/\\") or name.startswith(("~", "."))


class ModelRegistry:
    """Loads each configured model once; hands out task wrappers and a lock per model."""

    def __init__(self, specs: Sequence[ModelSpec], device: str | None = None) -> None:
        self.specs = {s.name: s for s in specs}
        self.device = device
        self._wrappers: dict[str, Any] = {}
        self._tasks: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._locks = {name: threading.RLock() for name in self.specs}
        self._load_lock = threading.Lock()

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

    def describe(self) -> list[dict[str, Any]]:
        """``GET /api/models``: name, whether it is loaded, and its kind once known."""
        out = []
        for name in self.specs:
            w = self._wrappers.get(name)
            out.append(
                {
                    "name": name,
                    "loaded": w is not None,
                    "kind": getattr(w, "kind", None),
                    "tasks": _tasks_for(getattr(w, "kind", None)),
                }
            )
        return out

    def wrapper(self, name: str) -> Any:
        """The loaded :class:`~explainlm.models.ModelWrapper` (loaded on first use)."""
        name = self.check(name)
        with self._load_lock:
            if name not in self._wrappers:
                from explainlm.models import ModelWrapper

                self._wrappers[name] = ModelWrapper.load(
                    self.specs[name].source, device=self.device
                )
            return self._wrappers[name]

    def task(
        self,
        name: str,
        task: str | None = None,
        *,
        labels: Sequence[str] | None = None,
        template: str | None = None,
        calibrate: bool | None = None,
        chat: bool | None = None,
    ) -> Any:
        """A task over the shared wrapper, cached per (model, task, options)."""
        from explainlm.models import make_task

        wrapper = self.wrapper(name)
        key = (name, task, tuple(labels) if labels else None, template, calibrate, chat)
        with self._load_lock:
            if key in self._tasks:
                self._tasks.move_to_end(key)
                return self._tasks[key]
        with self.lock(name):  # calibration runs the model
            made = make_task(
                wrapper, task, labels=labels, template=template, calibrate=calibrate, chat=chat
            )
        with self._load_lock:
            self._tasks[key] = made
            while len(self._tasks) > MAX_TASKS:
                self._tasks.popitem(last=False)
        return made

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold while running a model: one request at a time per model."""
        with self._locks[self.check(name)]:
            yield


def _tasks_for(kind: str | None) -> list[str]:
    if kind == "causal_lm":
        return ["zero_shot", "generator"]
    if kind == "sequence_classifier":
        return ["sequence_classifier"]
    return []
