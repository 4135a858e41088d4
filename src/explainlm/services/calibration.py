"""The per-model calibration of ``method="auto"`` in the run store.

A calibration (:mod:`explainlm.methods.calibration`) is recorded as a run of command
``calibrate`` whose summary holds it, keyed by the model's identity
(:func:`~explainlm.methods.calibration.model_key`). :func:`ensure_calibration` looks it up, computes
and records it when it is missing (or when ``refresh`` asks for a new one), and makes it the one
``auto`` uses in this process.

>>> CalibrateRequest(model="smollm2-135m", model_key="0123abcd").command
'calibrate'
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from explainlm.services.base import ServiceContext, ServiceRequest
from explainlm.services.common import ModelOptions


class CalibrateRequest(ModelOptions, ServiceRequest):
    """What a stored calibration run records: the model and its identity."""

    command: ClassVar[str] = "calibrate"
    model_key: str = Field(description="The model's identity (name, task, weights fingerprint).")
    candidates: list[str] = Field(default_factory=list, description="The methods calibrated.")


def stored_calibration(store: Any, key: str) -> Any:
    """The newest finished calibration of the model with identity ``key`` in ``store``, or None."""
    from explainlm.methods.calibration import Calibration

    if store is None:
        return None
    for rec in store.list_runs(command="calibrate", search=key, limit=20):
        doc = (rec.summary or {}).get("calibration")
        if rec.status == "finished" and doc and doc.get("model_key") == key:
            return Calibration.from_dict(doc)
    return None


def ensure_calibration(
    ctx: ServiceContext,
    model: str,
    classifier: Any,
    *,
    refresh: bool = False,
    max_batch_tokens: int | None = None,
) -> Any:
    """The model's calibration: remembered, else stored, else computed and recorded."""
    from explainlm.methods.calibration import CANDIDATES, calibrate, known, model_key, remember

    ctx.progress.check()  # a job cancelled while it waited for the model stops here
    key = model_key(classifier)
    cal = None if refresh else (known(key) or stored_calibration(ctx.store, key))
    if cal is None:
        req = CalibrateRequest(model=model, model_key=key, candidates=list(CANDIDATES))
        with ctx.recorded_run(req, model=model, extra=classifier.describe()) as run:
            with ctx.progress.stage_of("calibrating auto (once per model)"):
                cal = calibrate(
                    classifier, CANDIDATES, max_batch_tokens=max_batch_tokens,
                    cancel_check=ctx.progress.check,
                )  # fmt: skip
            run.summary = {"calibration": cal.to_dict()}
    remember(cal)
    return cal
