"""What-if jobs: counterfactuals, adversarial attacks, anchors, and the what-if page's requests.

Dataset jobs (:class:`CounterfactualRequest`, :class:`AttackRequest`, :class:`AnchorRequest`) read
their texts (arguments and/or a table), check everything that needs no model (options, one-word
texts, label names), then run in chunks; each chunk's results go to the run store as they finish, so
``resume=RUN_ID`` continues an interrupted run. The page's requests (:class:`PredictExplainRequest`,
:class:`EditRequest`) are single-text and unrecorded unless ``record=True``.

>>> build_request(AttackRequest, texts=["a fine film"], max_queries=0)
Traceback (most recent call last):
...
explainlm.errors.UserError: invalid options: max_queries: the query budget must be at least 1, got 0
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from explainlm.errors import UserError
from explainlm.services.base import ServiceContext, ServiceRequest, build_request
from explainlm.services.whatif_requests import (
    DEFAULT_MODEL,
    AnchorRequest,
    AttackRequest,
    CounterfactualRequest,
    EditRequest,
    EditSpec,
    PredictExplainRequest,
    TextsRequest,
)
from explainlm.services.whatif_workers import (
    AnchorWorker,
    AttackWorker,
    CounterfactualWorker,
    classifier,
    json_clean,
    read_inputs,
)
from explainlm.store import RunContext

__all__ = [
    "DEFAULT_MODEL",
    "AnchorRequest",
    "AttackRequest",
    "CounterfactualRequest",
    "EditRequest",
    "EditSpec",
    "PredictExplainRequest",
    "build_request",
    "run",
]


# --------------------------------------------------------------------- checks without a model
def known_labels(req: Any) -> list[str] | None:
    """The model's labels when they can be known without loading it (None: not without loading)."""
    from explainlm.models.classifiers import DEFAULT_SENTIMENT_LABELS
    from explainlm.models.sources import BUILTINS

    if req.labels:
        return list(req.labels)
    path = Path(req.model)
    cfg_file = path / "config.json"
    if cfg_file.is_file():
        cfg = json.loads(cfg_file.read_text())
        if any(a.endswith("ForSequenceClassification") for a in cfg.get("architectures") or []):
            id2label = cfg.get("id2label") or {}
            n = int(cfg.get("num_labels", len(id2label) or 2))
            return [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(n)]
        meta = path / "explainlm.json"
        if meta.is_file():
            labels = json.loads(meta.read_text()).get("zero_shot", {}).get("labels")
            if labels:
                return list(labels)
        return list(DEFAULT_SENTIMENT_LABELS)
    builtin = BUILTINS.get(req.model)
    if builtin is not None and builtin.kind == "causal_lm":
        return list(DEFAULT_SENTIMENT_LABELS)
    return None


def check_label(label: str | None, labels: list[str] | None, what: str = "target label") -> None:
    if label is None or labels is None:
        return
    if label.lower() not in {lab.lower() for lab in labels}:
        raise UserError(f"unknown {what} {label!r}; the model's labels are: {', '.join(labels)}")


# -------------------------------------------------------------------------- dataset jobs
def _job_run(req: TextsRequest, ctx: ServiceContext) -> AbstractContextManager[RunContext]:
    """A new recorded run, or the reopened run ``req.resume`` (its job spec must match)."""
    if not req.resume:
        return ctx.recorded_run(req, model=req.model)
    if ctx.store is None:
        raise UserError("resuming a run needs the run store")
    rec = ctx.store.get_run(req.resume)
    if rec.command != req.command:
        raise UserError(f"run {rec.run_id} is a {rec.command} run, not a {req.command} run")
    for k, v in req.job_spec().items():
        if rec.params.get(k) != v:
            raise UserError(
                f"cannot resume {rec.run_id}: its {k} was {rec.params.get(k)!r}, now {v!r}"
            )
    return ctx.recorded_run(req, model=req.model, resume=rec.run_id)


def _record_finish_options(req: TextsRequest, ctx: ServiceContext, run_id: str) -> None:
    """A resumed run stores the finish-only options it is summarised with (e.g. ``evaluate``)."""
    rec = ctx.store.get_run(run_id)
    new = {k: getattr(req, k) for k in req.finish_only}
    if all(rec.params.get(k) == v for k, v in new.items()):
        return
    params = {**rec.params, **new}
    if isinstance(params.get("request"), dict):
        params["request"] = {**params["request"], **new}
    ctx.store.update_params(run_id, params)


def _dataset_job(req: TextsRequest, ctx: ServiceContext, worker_of: Any) -> Any:
    from explainlm.whatif.jobs import WhatIfRun, key, run_chunks

    inputs = read_inputs(req)
    n = len(inputs.texts)
    with _job_run(req, ctx) as run:
        store = ctx.store if run.store is not None else None
        if store is not None and req.resume:
            _record_finish_options(req, ctx, run.run_id)
        done = store.get_items(run.run_id, req.command) if store is not None else {}
        todo = [i for i in range(n) if key(i) not in done]
        with ctx.models.lock(req.model):
            clf = classifier(req, ctx)
            worker = worker_of(clf, inputs)
            estimate = worker.estimate(todo) if todo else None
            computed = run_chunks(
                todo,
                worker.process,
                (lambda items: store.put_items(run.run_id, req.command, json_clean(items)))
                if store is not None
                else (lambda items: None),
                chunk_size=req.chunk_size,
                progress=ctx.progress,
                stage=f"{req.command} ({n} texts)",
                total=n,
                estimate_s=estimate,
            )
            items = [done[key(i)] if key(i) in done else json_clean(computed[i]) for i in range(n)]
            summary, extra = worker.finish(items)
        run.summary = json_clean({"summary": summary, **extra})
    return WhatIfRun(
        req.command,
        run.run_id,
        req.model,
        items,
        json_clean(summary),
        req.spec(),
        json_clean(extra),
        resumed=n - len(todo),
    )


# ------------------------------------------------------------------------ the page's requests
class PageResult(BaseModel):
    """A single-text result of the what-if page (``doc`` is the response body)."""

    run_id: str | None = None
    doc: dict[str, Any]

    def to_json_doc(self) -> dict[str, Any]:
        return {"run_id": self.run_id, **self.doc}


def _prediction(p: Any) -> dict[str, Any]:
    return {"label": p.label, "probs": p.probs}


def _words(text: str) -> list[dict[str, Any]]:
    from explainlm.whatif.text import WordText

    wt = WordText.of(text)
    return [
        {"index": i, "word": w, "start": s, "end": e, "editable": wt.is_editable(i)}
        for i, (w, (s, e)) in enumerate(zip(wt.words, wt.spans, strict=True))
    ]


def _predict_explain(req: PredictExplainRequest, ctx: ServiceContext) -> PageResult:
    """Prediction, the explanation's word scores, and its faithfulness next to random scores."""
    from explainlm.attribution import explain
    from explainlm.evaluation import evaluate

    with ctx.models.lock(req.model):
        clf = classifier(req, ctx)
        with ctx.progress.stage_of("explaining", 2):
            exps = explain([req.text], clf, [req.method, "random"])
            ctx.progress.advance(1)
            res = evaluate(exps, ["comprehensiveness", "sufficiency"], clf, agreement=False)
            ctx.progress.advance(1)
    faith: dict[str, dict[str, float]] = {}
    for r in res.rows:
        faith.setdefault(r["method"], {})[r["metric"]] = r.get("value")
    e = exps[0]
    words = _words(req.text)
    for w, s in zip(words, e.word_scores, strict=False):
        w["score"] = float(s)
    ours, rnd = faith.get(req.method, {}), faith.get("random", {})
    trusted = (ours.get("comprehensiveness") or 0) > (rnd.get("comprehensiveness") or 0)
    doc = {
        "model": req.model,
        "text": req.text,
        "prediction": {"label": e.predicted, "probs": e.probs},
        "method": req.method,
        "words": words,
        "faithfulness": {"method": ours, "random": rnd},
        "trusted": trusted,
        "trust_note": (
            f"{req.method}: comprehensiveness {ours.get('comprehensiveness', float('nan')):.3f} vs "
            f"{rnd.get('comprehensiveness', float('nan')):.3f} for random scores"
            + ("" if trusted else " — no better than random: do not rely on these scores")
        ),
    }
    return PageResult(run_id=_record(req, ctx, doc), doc=json_clean(doc))


def _edit(req: EditRequest, ctx: ServiceContext) -> PageResult:
    from explainlm.whatif.text import Edit, WordText, diff_words

    wt = WordText.of(req.text)
    doc: dict[str, Any] = {"model": req.model, "text": req.text}
    if req.edits:
        for e in req.edits:
            if e.index >= len(wt):
                raise UserError(f"edit of word {e.index}, but the text has {len(wt)} words")
        edited = wt.apply(
            [Edit(e.index, wt.words[e.index], e.replacement, "user") for e in req.edits]
        )
        doc.update(
            edited_text=edited.text,
            edits=[e.to_dict() for e in edited.edits],
            spans=[list(s) for s in edited.spans],
        )
    else:
        doc.update(edited_text=req.edited_text, edits=[], spans=[])
    if not doc["edited_text"].strip():
        raise UserError("the edited text is empty: nothing to predict")
    with ctx.models.lock(req.model):
        clf = classifier(req, ctx)
        before, after = clf.predict([req.text, doc["edited_text"]])
    doc.update(
        before=_prediction(before),
        after=_prediction(after),
        changed=before.label != after.label,
        delta={k: after.probs[k] - before.probs[k] for k in before.probs},
        diff=diff_words(req.text, doc["edited_text"]),
        words=_words(doc["edited_text"]),
    )
    return PageResult(run_id=_record(req, ctx, doc), doc=json_clean(doc))


def _record(req: Any, ctx: ServiceContext, doc: dict[str, Any]) -> str | None:
    if not req.record or ctx.store is None:
        return None
    with ctx.recorded_run(req, model=req.model) as run:
        run.summary = json_clean(doc)
    return run.run_id


# ---------------------------------------------------------------------------------- run
def run(request: ServiceRequest, ctx: ServiceContext | None = None) -> Any:
    """Run a what-if request (any of this module's request types)."""
    ctx = ctx or ServiceContext()
    if isinstance(request, CounterfactualRequest):
        labels = known_labels(request)
        check_label(request.target, labels)
        return _dataset_job(
            request, ctx, lambda clf, inp: CounterfactualWorker(request, ctx, clf, inp)
        )
    if isinstance(request, AttackRequest):
        return _dataset_job(request, ctx, lambda clf, inp: AttackWorker(request, ctx, clf, inp))
    if isinstance(request, AnchorRequest):
        return _dataset_job(request, ctx, lambda clf, inp: AnchorWorker(request, ctx, clf, inp))
    if isinstance(request, PredictExplainRequest):
        return _predict_explain(request, ctx)
    if isinstance(request, EditRequest):
        return _edit(request, ctx)
    raise TypeError(f"not a what-if request: {type(request).__name__}")
