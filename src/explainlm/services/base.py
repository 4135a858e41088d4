"""The service layer's contract: a typed request, a context, and one ``run`` function per job kind.

Every job kind (predict, explain, generate, benchmark, internals, audits, global, what-if, compare,
…) is one module ``explainlm/services/<kind>.py`` that defines:

* ``class <Kind>Request(ServiceRequest)`` — every option of the job, typed and validated (pydantic).
  The CLI builds it from its options (:func:`build_request`), the web API takes it as its JSON
  body, a Ray actor receives it pickled. Checks that need no model (names, ranges, paths,
  conflicting options) are validators here, so bad input fails before any model loads.
* ``def run(request, ctx: ServiceContext) -> <Kind>Result`` — loads models through ``ctx.models``,
  reports through ``ctx.progress`` (also the cancellation point), records the run in ``ctx.store``
  when there is one, and returns a result with ``run_id`` and ``to_json_doc()`` (the CLI's
  ``--json`` document and the web API's response body).

Front-ends (``cli/``, ``server/``, the Ray backend) only build requests, choose a context and
render results; they never orchestrate work and never import one another.

>>> class EchoRequest(ServiceRequest):
...     command: ClassVar[str] = "echo"
...     text: str
>>> build_request(EchoRequest, text="hi").spec()
{'text': 'hi'}
>>> build_request(EchoRequest, txt="hi")
Traceback (most recent call last):
...
explainlm.errors.UserError: invalid options: text: Field required; txt: Extra inputs are not permitted
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from secrets import token_hex
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from explainlm.errors import UserError
from explainlm.progress import Progress
from explainlm.results import json_safe
from explainlm.store import RunContext, RunStore

__all__ = [
    "LocalModels",
    "absolute_path",
    "ModelProvider",
    "ServiceContext",
    "ServiceRequest",
    "ServiceResult",
    "build_request",
    "json_safe",
    "new_run_id",
    "user_error_in",
    "validation_message",
]

R = TypeVar("R", bound="ServiceRequest")


class ServiceRequest(BaseModel):
    """Base of every request: unknown fields are refused; ``command`` names the run in the store.

    ``path_fields`` name the fields that read or write files on the machine that runs the job; a
    front-end that serves remote users (the web app) refuses requests that set them.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    command: ClassVar[str] = ""
    path_fields: ClassVar[tuple[str, ...]] = ()

    def spec(self) -> dict[str, Any]:
        """The normalised job spec stored with the run: all it takes to repeat or resume the job.

        Every field is included (defaults too); file paths (``path_fields``) are made absolute,
        so a run resumes from any working directory.
        """
        doc = self.model_dump(mode="json")
        for name in self.path_fields:
            value = doc.get(name)
            if isinstance(value, str) and value:
                doc[name] = absolute_path(value)
            elif isinstance(value, list):
                doc[name] = [absolute_path(v) if isinstance(v, str) else v for v in value]
        return doc

    @classmethod
    def from_stored(cls: type[R], params: Mapping[str, Any], **overrides: Any) -> R:
        """The request a recorded run was made with (its stored spec), with ``overrides``
        (e.g. ``resume``, ``device``) on top; facts learnt while running are ignored."""
        spec = params.get("request") or params  # older runs: the spec and facts side by side
        fields = {k: v for k, v in spec.items() if k in cls.model_fields}
        fields.update(settings_of_older_runs(cls, spec))
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return build_request(cls, **fields)


def settings_of_older_runs(cls: type[BaseModel], spec: Mapping[str, Any]) -> dict[str, Any]:
    """What a run stored before today's defaults computed with, so that its resumed part is
    computed as its first part was (not with the defaults of today).

    The precision policy and KernelSHAP's ``sampling`` parameter came in one change; a stored
    spec without ``precision`` was recorded before it. Such a run ran in float32 (not today's
    ``auto``) and its ``kernel_shap`` drew coalitions i.i.d. by the Shapley kernel
    (``sampling="kernel"``, not today's leverage-score default).

    >>> from explainlm.services.explain import ExplainRequest
    >>> settings_of_older_runs(ExplainRequest, {"methods": ["kernel_shap"], "params": {}})
    {'precision': 'fp32', 'params': {'kernel_shap': {'sampling': 'kernel'}}}
    >>> settings_of_older_runs(ExplainRequest, {"methods": ["kernel_shap"], "precision": "auto"})
    {}
    """
    if "precision" not in cls.model_fields or "precision" in spec:
        return {}
    out: dict[str, Any] = {"precision": "fp32"}
    methods = spec.get("methods") or []
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",")]
    if "kernel_shap" in methods and "params" in cls.model_fields:
        out["params"] = with_param(spec.get("params"), "kernel_shap", "sampling", "kernel")
    return out


def with_param(params: Any, method: str, name: str, value: Any) -> Any:
    """Stored method parameters (a nested object, or the CLI's ``METHOD.NAME=VALUE`` strings)
    with ``method.name`` set to ``value`` unless they set it."""
    if isinstance(params, (list, tuple)):
        given = any(str(p).startswith(f"{method}.{name}=") for p in params)
        return list(params) if given else [*params, f"{method}.{name}={value}"]
    out = {k: dict(v) for k, v in (params or {}).items()}
    out.setdefault(method, {}).setdefault(name, value)
    return out


def absolute_path(value: str) -> str:
    """``value`` as an absolute path (``~`` expanded; nothing needs to exist)."""
    return os.path.abspath(os.path.expanduser(value))


class ServiceResult(Protocol):
    """What every service returns: the run's id and its JSON document."""

    run_id: str | None

    def to_json_doc(self) -> dict[str, Any]: ...


def validation_message(exc: ValidationError) -> str:
    """One line naming each bad field: ``"invalid options: lime.n_samples: …"``.

    A :class:`UserError` raised by a validator is already a complete sentence: it is shown as is.
    """
    parts = []
    for err in exc.errors()[:6]:
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, UserError):
            return str(cause)
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "options"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        given = err.get("input")
        echo = err.get("type") not in ("missing", "extra_forbidden") and "got " not in msg
        if echo and isinstance(given, (str, int, float, bool)):
            msg += f" (got {given!r})"  # the bad value, so the user sees what was read
        parts.append(f"{where}: {msg}")
    return "invalid options: " + "; ".join(parts)


def user_error_in(exc: ValidationError) -> UserError | None:
    """The :class:`UserError` a validator raised, if that is what failed (bad values, not bad JSON)."""
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, UserError):
            return cause
    return None


def build_request(cls: type[R], **fields: Any) -> R:
    """``cls(**fields)`` with validation errors as one-line :class:`UserError` (for the CLI)."""
    try:
        return cls.model_validate(fields)
    except ValidationError as e:
        raise UserError(validation_message(e)) from None


class ModelProvider(Protocol):
    """Where services get models: the CLI loads them; the web app hands out its shared ones."""

    def wrapper(self, name: str) -> Any:
        """The loaded :class:`~explainlm.models.ModelWrapper` ``name`` (for the internals)."""
        ...

    def task(self, name: str, task: str | None = None, **options: Any) -> Any:
        """The model ``name`` as a task (classifier, zero-shot classifier, generator)."""
        ...

    def lock(self, name: str) -> AbstractContextManager[Any]:
        """Held while the model runs (one job at a time per shared model)."""
        ...


Announce = Callable[[str], AbstractContextManager[Any]]


class LocalModels:
    """Loads each model once in this process and makes tasks over it, cached per options.

    ``announce(message)`` wraps each load (the CLI shows a spinner); :meth:`source` maps a
    requested name to what is loaded (the web app's configured names map to paths).
    """

    max_tasks = 32

    def __init__(self, device: str | None = None, *, announce: Announce | None = None) -> None:
        self.device = device
        self.announce: Announce = announce or (lambda _message: nullcontext())
        self._wrappers: dict[str, Any] = {}
        self._tasks: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._locks: dict[str, threading.RLock] = {}
        self._load_lock = threading.Lock()

    def source(self, name: str) -> str:
        """Where the model called ``name`` loads from (here: the name itself)."""
        return name

    def wrapper(self, name: str) -> Any:
        from explainlm.models import ModelWrapper

        source = self.source(name)
        with self._load_lock:
            if name not in self._wrappers:
                with self.announce(f"loading {name} …"):
                    self._wrappers[name] = ModelWrapper.load(source, device=self.device)
            return self._wrappers[name]

    def task(self, name: str, task: str | None = None, **options: Any) -> Any:
        from explainlm.models import make_task

        opts = {k: v for k, v in options.items() if v is not None}
        key = (name, task, tuple(sorted((k, repr(v)) for k, v in opts.items())))
        with self._load_lock:
            if key in self._tasks:
                self._tasks.move_to_end(key)
                return self._tasks[key]
        wrapper = self.wrapper(name)
        with self.lock(name):  # zero-shot calibration runs the model
            made = make_task(wrapper, task, **opts)
        with self._load_lock:
            self._tasks[key] = made
            while len(self._tasks) > self.max_tasks:
                self._tasks.popitem(last=False)
        return made

    def lock(self, name: str) -> AbstractContextManager[Any]:
        with self._load_lock:
            return self._locks.setdefault(name, threading.RLock())


LOCK_POLL_S = 0.1  # how often a job waiting for a busy model checks whether it was cancelled


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + token_hex(3)


@dataclass
class ServiceContext:
    """What a service runs with: a run store (``None``: record nothing), progress, models."""

    store: RunStore | None = None
    progress: Progress = field(default_factory=Progress)
    models: ModelProvider = field(default_factory=LocalModels)
    source: str = "python"  # cli | server | ray | python: recorded with each run

    def task(self, name: str, task: str | None = None, **options: Any) -> Any:
        """``models.task(...)``, reported as the stage "loading NAME" (the first load is slow)."""
        self.progress.start(f"loading {name}")
        return self.models.task(name, task, **options)

    def wrapper(self, name: str) -> Any:
        """``models.wrapper(name)``, reported as the stage "loading NAME"."""
        self.progress.start(f"loading {name}")
        return self.models.wrapper(name)

    @contextmanager
    def model_lock(self, name: str) -> Iterator[None]:
        """Hold ``models.lock(name)`` (one job at a time per shared model) while the block runs.

        While another job holds the model, the stage is "waiting for NAME" and the wait stays
        cancellable: a cancel raises :class:`~explainlm.progress.Cancelled` within
        ``LOCK_POLL_S`` instead of after the other job. Open it inside :meth:`recorded_run`, so
        a job cancelled while it waits has its run recorded (as cancelled). A provider's lock
        that is not a lock (e.g. ``nullcontext()``) is simply entered.
        """
        lock = self.models.lock(name)
        if not hasattr(lock, "acquire"):
            with lock:
                yield
            return
        if not lock.acquire(blocking=False):
            self.progress.start(f"waiting for {name}")
            while not lock.acquire(timeout=LOCK_POLL_S):
                self.progress.check()
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def recorded_run(
        self,
        request: ServiceRequest,
        *,
        model: str | None = None,
        resume: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Iterator[RunContext]:
        """Record the request's run (spec, status, summary) around the work; a dummy without store.

        The stored parameters are the request's spec, then ``extra`` (facts learnt while running,
        e.g. the model's labels, which may differ from the options asked for), then ``source``,
        and the spec once more, untouched, as ``request`` (what a resume or a repeat runs).
        ``resume``: take over that run instead (refused while a live process owns it).
        """
        if self.store is None:
            yield RunContext(None, resume or new_run_id())
            return
        spec = request.spec()
        params = {**spec, **(extra or {}), "source": self.source, "request": spec}
        with self.store.recorded_run(
            request.command, model=model, params=params, resume=resume
        ) as run:
            yield run
