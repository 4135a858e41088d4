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

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from secrets import token_hex
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from explainlm.errors import UserError
from explainlm.progress import Progress
from explainlm.store import RunContext, RunStore

R = TypeVar("R", bound="ServiceRequest")


class ServiceRequest(BaseModel):
    """Base of every request: unknown fields are refused; ``command`` names the run in the store."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    command: ClassVar[str] = ""

    def spec(self) -> dict[str, Any]:
        """The normalised job spec stored with the run: all it takes to repeat or resume the job."""
        return self.model_dump(mode="json")


def validation_message(exc: ValidationError) -> str:
    """One line naming each bad field: ``"lime.n_samples: Input should be greater than 1"``."""
    parts = []
    for err in exc.errors()[:6]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "options"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "invalid options: " + "; ".join(parts)


def build_request(cls: type[R], **fields: Any) -> R:
    """``cls(**fields)`` with validation errors as one-line :class:`UserError` (for the CLI)."""
    try:
        return cls.model_validate(fields)
    except ValidationError as e:
        raise UserError(validation_message(e)) from None


class ModelProvider(Protocol):
    """Where services get models: the CLI loads them; the web app hands out its shared ones."""

    def task(self, name: str, task: str | None = None, **options: Any) -> Any:
        """The model ``name`` as a task (classifier, zero-shot classifier, generator)."""
        ...

    def lock(self, name: str) -> AbstractContextManager[Any]:
        """Held while the model runs (one job at a time per shared model)."""
        ...


class LocalModels:
    """Loads models in this process, once per (name, task, options)."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._tasks: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def task(self, name: str, task: str | None = None, **options: Any) -> Any:
        from explainlm.models import load_model

        opts = {k: v for k, v in options.items() if v is not None}
        key = (name, task, tuple(sorted((k, repr(v)) for k, v in opts.items())))
        with self._lock:
            if key not in self._tasks:
                self._tasks[key] = load_model(name, task, device=self.device, **opts)
            return self._tasks[key]

    def lock(self, name: str) -> AbstractContextManager[Any]:
        return nullcontext()


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + token_hex(3)


@dataclass
class ServiceContext:
    """What a service runs with: a run store (``None``: record nothing), progress, models."""

    store: RunStore | None = None
    progress: Progress = field(default_factory=Progress)
    models: ModelProvider = field(default_factory=LocalModels)
    source: str = "python"  # cli | server | ray | python: recorded with each run

    @contextmanager
    def recorded_run(
        self, request: ServiceRequest, *, model: str | None = None, **extra: Any
    ) -> Iterator[RunContext]:
        """Record the request's run (spec, status, summary) around the work; a dummy without store."""
        if self.store is None:
            yield RunContext(None, new_run_id())  # type: ignore[arg-type]
            return
        params = {**request.spec(), **extra, "source": self.source}
        with self.store.recorded_run(request.command, model=model, params=params) as run:
            yield run
