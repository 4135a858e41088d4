"""The work of each what-if dataset job kind (:mod:`explainlm.services.whatif`): a :class:`Worker`
turns a chunk of texts into stored payloads and all payloads into the job's summary. Also here: the
job's inputs (:func:`read_inputs`: texts, gold labels, texts that cannot be analysed), its
classifier and the helper models (language model, sentence similarity, embedding tables).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from explainlm.errors import UserError
from explainlm.services.base import ServiceContext
from explainlm.services.whatif_requests import (
    AnchorRequest,
    AttackRequest,
    CounterfactualRequest,
    TextsRequest,
)


class Inputs(BaseModel):
    texts: list[str]
    gold: list[str | None]
    skip: list[str | None]
    lines: list[str]  # where each text came from, for messages


def read_inputs(req: TextsRequest) -> Inputs:
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
    return Inputs(texts=texts, gold=gold, skip=skip, lines=lines)


_SHARED: dict[tuple[str, str, str | None], Any] = {}


def _shared(kind: str, name: str, device: str | None, factory: Any) -> Any:
    """Helper models (sentence encoder, embedding tables) loaded once per process."""
    k = (kind, name, device)
    if k not in _SHARED:
        _SHARED[k] = factory()
    return _SHARED[k]


def _device(ctx: ServiceContext) -> str | None:
    return getattr(ctx.models, "device", None)


def classifier(req: Any, ctx: ServiceContext) -> Any:
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


def json_clean(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, numpy scalars → floats."""
    import math

    if isinstance(value, dict):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Worker:
    """Per-kind work of a dataset job: a chunk of texts → payloads; all payloads → summary."""

    expected_queries = 100

    def __init__(self, req: Any, ctx: ServiceContext, clf: Any, inputs: Inputs) -> None:
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


class CounterfactualWorker(Worker):
    def __init__(
        self, req: CounterfactualRequest, ctx: ServiceContext, clf: Any, inputs: Inputs
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


class AttackWorker(Worker):
    def __init__(self, req: AttackRequest, ctx: ServiceContext, clf: Any, inputs: Inputs) -> None:
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


class AnchorWorker(Worker):
    def __init__(self, req: AnchorRequest, ctx: ServiceContext, clf: Any, inputs: Inputs) -> None:
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
