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
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator, model_validator

from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.services.base import ServiceContext, ServiceRequest, build_request
from explainlm.store import RunContext

__all__ = [
    "AnchorRequest",
    "AttackRequest",
    "CounterfactualRequest",
    "EditRequest",
    "PredictExplainRequest",
    "build_request",
    "run",
]

DEFAULT_MODEL = "smollm2-135m"


class _Texts(ServiceRequest):
    """Options every what-if job shares: the model, the texts, and the dataset-job plumbing."""

    model: str = DEFAULT_MODEL
    texts: list[str] = Field(default_factory=list)
    input: str | None = None
    text_column: str = "text"
    label_column: str | None = None
    label_names: list[str] | None = None
    limit: int | None = Field(None, ge=1)
    labels: list[str] | None = None
    template: str | None = None
    max_batch_tokens: int = Field(DEFAULT_MAX_BATCH_TOKENS, ge=16)
    seed: int = 0
    chunk_size: int = Field(32, ge=1)
    resume: str | None = None
    similarity_model: str = "minilm-l6"

    @model_validator(mode="after")
    def _texts_given(self) -> _Texts:
        from explainlm.whatif.jobs import one_word_reason

        if not self.texts and not self.input:
            raise ValueError("no text given: pass texts or an input file")
        for i, t in enumerate(self.texts):
            why = one_word_reason(t) if t.strip() else "is empty"
            if why:
                raise ValueError(f"text {i + 1} ({t.strip()[:40]!r}) {why}")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("duplicate zero-shot labels")
        return self

    def job_spec(self) -> dict[str, Any]:
        """What must match for a run to be resumed with this request."""
        return {k: v for k, v in self.spec().items() if k not in ("resume", "chunk_size")}


def _positive_budget(what: str, v: int) -> int:
    if v < 1:
        raise ValueError(f"the {what} must be at least 1, got {v}")
    return v


class CounterfactualRequest(_Texts):
    command: ClassVar[str] = "counterfactual"
    target: str | None = None
    margin: float | None = Field(None, gt=0, le=1)
    n: int = Field(3, ge=1, le=50)
    max_edits: int = Field(4, ge=1, le=20)
    max_queries: int = 400
    positions: int = Field(6, ge=1)
    per_source: int = Field(6, ge=1)
    sources: list[str] = Field(default_factory=lambda: ["llm", "embedding", "delete"])
    beam: int = Field(4, ge=1)
    expand: int = Field(3, ge=1)
    lm: str = "smollm2-135m"
    embeddings: str = "minilm-l6"
    infill_prompt: str = "Here is a {label} text:\n"
    quality: bool = True
    evaluate: list[str] = Field(default_factory=list)

    @field_validator("max_queries")
    @classmethod
    def _budget(cls, v: int) -> int:
        return _positive_budget("query budget", v)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        from explainlm.whatif.candidates import SOURCES

        bad = [s for s in v if s not in SOURCES]
        if bad or not v:
            raise ValueError(f"unknown candidate source(s) {bad}; known: {', '.join(SOURCES)}")
        return v

    @field_validator("infill_prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        try:
            v.format(label="x")
        except (KeyError, IndexError, ValueError):
            raise ValueError("the infill prompt may only use the {label} placeholder") from None
        return v


class AttackRequest(_Texts):
    command: ClassVar[str] = "attack"
    kind: str = "word"
    max_queries: int = 200
    min_similarity: float = Field(0.8, ge=0, le=1)
    max_perturbed: float = Field(0.3, gt=0, le=1)
    ranking: str = "gradient"
    neighbours: int = Field(20, ge=1)
    min_cosine: float = Field(0.3, ge=-1, le=1)
    top_k: int = Field(8, ge=1)
    max_edit_distance: int = Field(30, ge=1)

    @field_validator("max_queries")
    @classmethod
    def _budget(cls, v: int) -> int:
        return _positive_budget("query budget", v)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        from explainlm.whatif.attacks import ATTACKS

        if v not in ATTACKS:
            raise ValueError(f"unknown attack {v!r}; known: {', '.join(ATTACKS)}")
        return v

    @field_validator("ranking")
    @classmethod
    def _ranking(cls, v: str) -> str:
        from explainlm.whatif.attacks import RANKINGS

        if v not in RANKINGS:
            raise ValueError(f"unknown ranking {v!r}; known: {', '.join(RANKINGS)}")
        return v


class AnchorRequest(_Texts):
    command: ClassVar[str] = "anchor"
    threshold: float = Field(0.95, gt=0, lt=1)
    delta: float = Field(0.1, gt=0, lt=1)
    epsilon: float = Field(0.15, gt=0, lt=1)
    batch_size: int = Field(25, ge=1)
    beam_size: int = Field(4, ge=1)
    max_anchor_size: int | None = Field(None, ge=1)
    perturbation: str = "unk"
    p: float = Field(0.5, gt=0, lt=1)
    max_samples: int = 5000
    validation_samples: int = Field(0, ge=0)
    llm_candidates: int = Field(10, ge=1)
    lm: str = "smollm2-135m"

    @field_validator("max_samples")
    @classmethod
    def _budget(cls, v: int) -> int:
        return _positive_budget("sample budget", v)

    @field_validator("perturbation")
    @classmethod
    def _perturbation(cls, v: str) -> str:
        from explainlm.whatif.anchors import PERTURBATIONS

        if v not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {v!r}; known: {', '.join(PERTURBATIONS)}")
        return v


class EditSpec(BaseModel):
    """Replace word ``index`` of the text by ``replacement`` ("" deletes it)."""

    index: int = Field(ge=0)
    replacement: str = ""


class PredictExplainRequest(ServiceRequest):
    """The page's first view: the prediction and an explanation with how far to trust it."""

    command: ClassVar[str] = "whatif-predict"
    model: str = DEFAULT_MODEL
    text: str = Field(min_length=1)
    labels: list[str] | None = None
    template: str | None = None
    method: str = "occlusion"
    record: bool = False


class EditRequest(ServiceRequest):
    """ "What if this word were different?": the edited text's prediction next to the original's."""

    command: ClassVar[str] = "whatif-edit"
    model: str = DEFAULT_MODEL
    text: str = Field(min_length=1)
    edits: list[EditSpec] = Field(default_factory=list)
    edited_text: str | None = None
    labels: list[str] | None = None
    template: str | None = None
    record: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> EditRequest:
        if bool(self.edits) == (self.edited_text is not None):
            raise ValueError("give either edits or edited_text")
        if len({e.index for e in self.edits}) != len(self.edits):
            raise ValueError("two edits of the same word")
        return self


# --------------------------------------------------------------------- checks without a model
class _Inputs(BaseModel):
    texts: list[str]
    gold: list[str | None]
    skip: list[str | None]
    lines: list[str]  # where each text came from, for messages


def read_inputs(req: _Texts) -> _Inputs:
    """The texts (arguments first, then the table's rows), their gold labels, and the rows that
    cannot be analysed (with the reason); reads no model."""
    from explainlm.datasets import read_table
    from explainlm.whatif.jobs import one_word_reason

    texts, gold = list(req.texts), [None] * len(req.texts)
    lines = [f"text {i + 1}" for i in range(len(texts))]
    if req.input:
        table = read_table(
            req.input, text_column=req.text_column, label_column=req.label_column, limit=req.limit
        )
        texts += table.texts
        gold += table.labels if table.labels is not None else [None] * len(table)
        lines += [f"{table.path}, line {n}" for n in table.lines]
    if req.limit is not None:
        texts, gold, lines = texts[: req.limit], gold[: req.limit], lines[: req.limit]
    skip = [one_word_reason(t) for t in texts]
    return _Inputs(texts=texts, gold=gold, skip=skip, lines=lines)


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


# ------------------------------------------------------------------------------ models
_SHARED: dict[tuple[str, str, str | None], Any] = {}


def _shared(kind: str, name: str, device: str | None, factory: Any) -> Any:
    """Helper models (sentence encoder, embedding tables) loaded once per process."""
    k = (kind, name, device)
    if k not in _SHARED:
        _SHARED[k] = factory()
    return _SHARED[k]


def _device(ctx: ServiceContext) -> str | None:
    return getattr(ctx.models, "device", None)


def _classifier(req: Any, ctx: ServiceContext) -> Any:
    from explainlm.models import Classifier

    opts: dict[str, Any] = {}
    if req.labels:
        opts["labels"] = list(req.labels)
    if req.template:
        opts["template"] = req.template
    clf = ctx.models.task(req.model, None, **opts)
    if not isinstance(clf, Classifier):
        raise UserError(f"what-if analyses need a classifier; {req.model} is a {clf.task}")
    return clf


def _language_model(name: str, clf: Any, ctx: ServiceContext, budget: int) -> Any:
    from explainlm.whatif.language_model import LanguageModel

    wrapper = clf.wrapper
    if not (wrapper.name == name and wrapper.is_decoder):
        wrapper = ctx.models.task(name, "generator").wrapper
    return LanguageModel(wrapper, max_batch_tokens=budget)


def _similarity(req: Any, ctx: ServiceContext) -> Any:
    from explainlm.whatif.quality import SentenceSimilarity

    dev = _device(ctx)
    return _shared(
        "similarity",
        req.similarity_model,
        dev,
        lambda: SentenceSimilarity.load(req.similarity_model, device=dev),
    )


# -------------------------------------------------------------------------- dataset jobs
@contextmanager
def _job_run(req: _Texts, ctx: ServiceContext) -> Any:
    """A new recorded run, or the reopened run ``req.resume`` (its job spec must match)."""
    if not req.resume:
        with ctx.recorded_run(req, model=req.model) as run:
            yield run
        return
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
    ctx.store.reopen_run(rec.run_id)
    run = RunContext(ctx.store, rec.run_id)
    try:
        yield run
    except KeyboardInterrupt:
        ctx.store.finish_run(
            run.run_id, status="interrupted", summary=run.summary, error="interrupted"
        )
        raise
    except BaseException as e:
        ctx.store.finish_run(
            run.run_id, status="failed", summary=run.summary, error=f"{type(e).__name__}: {e}"
        )
        raise
    ctx.store.finish_run(run.run_id, summary=run.summary)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, numpy scalars → floats."""
    import math

    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dataset_job(req: _Texts, ctx: ServiceContext, worker_of: Any) -> Any:
    from explainlm.whatif.jobs import WhatIfRun, key, run_chunks

    inputs = read_inputs(req)
    n = len(inputs.texts)
    with _job_run(req, ctx) as run:
        store = ctx.store if run.store is not None else None
        done = store.get_items(run.run_id, req.command) if store is not None else {}
        todo = [i for i in range(n) if key(i) not in done]
        with ctx.models.lock(req.model):
            clf = _classifier(req, ctx)
            worker = worker_of(clf, inputs)
            estimate = worker.estimate(todo) if todo else None
            computed = run_chunks(
                todo,
                worker.process,
                (lambda items: store.put_items(run.run_id, req.command, _clean(items)))
                if store is not None
                else (lambda items: None),
                chunk_size=req.chunk_size,
                progress=ctx.progress,
                stage=f"{req.command} ({n} texts)",
                total=n,
                estimate_s=estimate,
            )
            items = [done[key(i)] if key(i) in done else _clean(computed[i]) for i in range(n)]
            summary, extra = worker.finish(items)
        run.summary = _clean({"summary": summary, **extra})
    return WhatIfRun(
        req.command,
        run.run_id,
        req.model,
        items,
        _clean(summary),
        req.spec(),
        _clean(extra),
        resumed=n - len(todo),
    )


class _Worker:
    """Per-kind work of a dataset job: a chunk of texts → payloads; all payloads → summary."""

    expected_queries = 100

    def __init__(self, req: Any, ctx: ServiceContext, clf: Any, inputs: _Inputs) -> None:
        from explainlm.whatif.oracle import Oracle

        self.req, self.ctx, self.clf, self.inputs = req, ctx, clf, inputs
        self.oracle = Oracle(clf, max_batch_tokens=req.max_batch_tokens)

    def estimate(self, todo: list[int]) -> float:
        """Rough seconds: time to score a few texts × queries expected per text × texts."""
        sample = [self.inputs.texts[i] for i in todo[:8]]
        start = time.perf_counter()
        self.oracle.probs(sample)
        per_text = (time.perf_counter() - start) / max(len(sample), 1)
        return per_text * self.expected_queries * len(todo)

    def subset(self, idx: list[int]) -> tuple[list[str], list[str | None]]:
        return [self.inputs.texts[i] for i in idx], [self.inputs.skip[i] for i in idx]

    def gold(self) -> list[str | None]:
        from explainlm.whatif.contrast_sets import gold_labels

        return [
            None if g is None else gold_labels([g], self.clf.labels, self.req.label_names)[0]
            for g in self.inputs.gold
        ]


class _CounterfactualWorker(_Worker):
    def __init__(
        self, req: CounterfactualRequest, ctx: ServiceContext, clf: Any, inputs: _Inputs
    ) -> None:
        from explainlm.whatif.candidates import EmbeddingNeighbours, LLMInfill
        from explainlm.whatif.counterfactuals import CounterfactualConfig, CounterfactualGenerator

        super().__init__(req, ctx, clf, inputs)
        self.expected_queries = min(req.max_queries, 150)
        need_lm = "llm" in req.sources or req.quality
        lm = _language_model(req.lm, clf, ctx, req.max_batch_tokens) if need_lm else None
        candidates: dict[str, Any] = {}
        if "llm" in req.sources:
            candidates["llm"] = LLMInfill(lm, prompt=req.infill_prompt)
        if "embedding" in req.sources:
            dev = _device(ctx)
            candidates["embedding"] = _shared(
                "neighbours", req.embeddings, dev, lambda: EmbeddingNeighbours.load(req.embeddings)
            )
        config = CounterfactualConfig(
            n=req.n,
            max_edits=req.max_edits,
            max_queries=req.max_queries,
            positions=req.positions,
            per_source=req.per_source,
            sources=tuple(req.sources),
            beam=req.beam,
            expand=req.expand,
            target=req.target,
            margin=req.margin,
        )
        self.generator = CounterfactualGenerator(
            self.oracle,
            config,
            candidates=candidates,
            lm=lm if req.quality else None,
            similarity=_similarity(req, ctx) if req.quality else None,
        )

    def process(self, idx: list[int], progress: Any) -> dict[int, dict[str, Any]]:
        texts, skip = self.subset(idx)
        res = self.generator.generate(texts, progress, skip=skip)
        return {i: r.to_dict() for i, r in zip(idx, res, strict=True)}

    def finish(self, items: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        from explainlm.whatif.contrast_sets import evaluate_contrast_set
        from explainlm.whatif.counterfactuals import CounterfactualResult
        from explainlm.whatif.oracle import Oracle
        from explainlm.whatif.summary import counterfactual_summary

        results = [CounterfactualResult.from_dict(d) for d in items]
        extra: dict[str, Any] = {}
        if self.req.evaluate:
            gold = self.gold()
            if any(g is None for g in gold):
                raise UserError(
                    "contrast-set evaluation needs a gold label for every text (--label-column)"
                )
            extra["contrast_sets"] = []
            for name in self.req.evaluate:
                model = self.clf if name == self.req.model else self.ctx.models.task(name)
                oracle = Oracle(model, max_batch_tokens=self.req.max_batch_tokens)
                extra["contrast_sets"].append(
                    evaluate_contrast_set(
                        oracle, results, gold, editor=self.req.model, seed=self.req.seed
                    )  # type: ignore[arg-type]
                    | {"model": name}
                )
        return counterfactual_summary(results, seed=self.req.seed), extra


class _AttackWorker(_Worker):
    def __init__(self, req: AttackRequest, ctx: ServiceContext, clf: Any, inputs: _Inputs) -> None:
        from explainlm.whatif.attacks import AttackConfig, Attacker
        from explainlm.whatif.candidates import EmbeddingNeighbours

        super().__init__(req, ctx, clf, inputs)
        self.expected_queries = min(req.max_queries, 60)
        config = AttackConfig(
            kind=req.kind,
            max_queries=req.max_queries,
            min_similarity=req.min_similarity,
            max_perturbed=req.max_perturbed,
            ranking=req.ranking,
            neighbours=req.neighbours,
            min_cosine=req.min_cosine,
            top_k=req.top_k,
            max_edit_distance=req.max_edit_distance,
            seed=req.seed,
        )
        neighbours = EmbeddingNeighbours(clf.wrapper) if req.kind == "word" else None
        self.attacker = Attacker(
            self.oracle, config, neighbours=neighbours, similarity=_similarity(req, ctx)
        )
        self.gold_names = self.gold()

    def process(self, idx: list[int], progress: Any) -> dict[int, dict[str, Any]]:
        texts, skip = self.subset(idx)
        gold = [self.gold_names[i] for i in idx]
        res = self.attacker.attack(texts, gold, progress, skip=skip)
        return {i: r.to_dict() for i, r in zip(idx, res, strict=True)}

    def finish(self, items: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        from explainlm.whatif.attacks import AttackResult
        from explainlm.whatif.summary import attack_summary

        return attack_summary([AttackResult.from_dict(d) for d in items], seed=self.req.seed), {}


class _AnchorWorker(_Worker):
    def __init__(self, req: AnchorRequest, ctx: ServiceContext, clf: Any, inputs: _Inputs) -> None:
        from explainlm.whatif.anchors import AnchorConfig, AnchorExplainer

        super().__init__(req, ctx, clf, inputs)
        self.expected_queries = min(req.max_samples, 800)
        config = AnchorConfig(
            threshold=req.threshold,
            delta=req.delta,
            epsilon=req.epsilon,
            batch_size=req.batch_size,
            beam_size=req.beam_size,
            max_anchor_size=req.max_anchor_size,
            perturbation=req.perturbation,
            p=req.p,
            max_samples=req.max_samples,
            validation_samples=req.validation_samples,
            llm_candidates=req.llm_candidates,
        )
        lm = (
            _language_model(req.lm, clf, ctx, req.max_batch_tokens)
            if req.perturbation == "llm"
            else None
        )
        self.explainer = AnchorExplainer(self.oracle, config, lm=lm, seed=req.seed)

    def process(self, idx: list[int], progress: Any) -> dict[int, dict[str, Any]]:
        texts, skip = self.subset(idx)
        res = self.explainer.explain(texts, progress, skip=skip)
        return {i: r.to_dict() for i, r in zip(idx, res, strict=True)}

    def finish(self, items: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        from explainlm.whatif.anchors import AnchorResult
        from explainlm.whatif.summary import anchor_summary

        results = [AnchorResult.from_dict(d) for d in items]
        texts = self.inputs.texts if len(self.inputs.texts) > 1 else None
        return anchor_summary(results, texts, seed=self.req.seed), {}


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
        clf = _classifier(req, ctx)
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
    return PageResult(run_id=_record(req, ctx, doc), doc=_clean(doc))


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
        clf = _classifier(req, ctx)
        before, after = clf.predict([req.text, doc["edited_text"]])
    doc.update(
        before=_prediction(before),
        after=_prediction(after),
        changed=before.label != after.label,
        delta={k: after.probs[k] - before.probs[k] for k in before.probs},
        diff=diff_words(req.text, doc["edited_text"]),
        words=_words(doc["edited_text"]),
    )
    return PageResult(run_id=_record(req, ctx, doc), doc=_clean(doc))


def _record(req: Any, ctx: ServiceContext, doc: dict[str, Any]) -> str | None:
    if not req.record or ctx.store is None:
        return None
    with ctx.recorded_run(req, model=req.model) as run:
        run.summary = _clean(doc)
    return run.run_id


# ---------------------------------------------------------------------------------- run
def run(request: ServiceRequest, ctx: ServiceContext | None = None) -> Any:
    """Run a what-if request (any of this module's request types)."""
    ctx = ctx or ServiceContext()
    if isinstance(request, CounterfactualRequest):
        labels = known_labels(request)
        check_label(request.target, labels)
        return _dataset_job(
            request, ctx, lambda clf, inp: _CounterfactualWorker(request, ctx, clf, inp)
        )
    if isinstance(request, AttackRequest):
        return _dataset_job(request, ctx, lambda clf, inp: _AttackWorker(request, ctx, clf, inp))
    if isinstance(request, AnchorRequest):
        return _dataset_job(request, ctx, lambda clf, inp: _AnchorWorker(request, ctx, clf, inp))
    if isinstance(request, PredictExplainRequest):
        return _predict_explain(request, ctx)
    if isinstance(request, EditRequest):
        return _edit(request, ctx)
    raise TypeError(f"not a what-if request: {type(request).__name__}")
