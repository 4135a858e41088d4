"""Each audit kind as a plan: its models, its per-item model work in stages, its statistics.

An :class:`AuditPlan` is built from the request and the data ``prepare`` read (no model) and says

* ``load(models)``: the models the audit needs, as tasks (a classifier, a scorer, a generator …);
* ``facts(loaded)``: what the statistics need to know of those models (their labels, the label
  compared, the scorer's description) — JSON, checked here (a label the model lacks is a
  one-line error);
* ``stages(facts)``: the per-item model work, each :class:`Stage` a list of item keys computed
  chunk by chunk (``compute(loaded, keys) → {key: payload}``), the payloads JSON;
* ``summarise(facts, payloads)``: the audit document from every stage's payloads — statistics
  only (bootstrap CIs, tests, group metrics), no model.

Locally (:func:`explainlm.audits.pipeline.run_plan`) each stage's chunks are cached in the run
store as they finish (``resume``); on a cluster (``--backend ray``) each chunk is one shard
computed by an actor, and the driver summarises the merged payloads — the same chunks and the same
statistics, hence the same document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from explainlm.audits import bios as bios_mod
from explainlm.audits import bold as bold_mod
from explainlm.audits import counterfactual as cf
from explainlm.audits import lm_bias, pipeline
from explainlm.errors import UserError

Payloads = Mapping[str, Mapping[str, Any]]  # stage id -> item key -> payload


@dataclass
class Stage:
    """Per-item model work: ``keys`` computed ``chunk_size`` at a time (``None``: all in one call,
    when the audit defines the computation over the whole set), stored under ``prefix + key``."""

    id: str
    keys: list[str]
    compute: Callable[[Any, list[str]], Mapping[str, Any]]
    chunk_size: int | None = 64
    prefix: str = ""
    label: str | None = None  # the progress stage (default: the id)

    def chunks(self) -> list[list[str]]:
        size = self.chunk_size or max(1, len(self.keys))
        return [self.keys[s : s + size] for s in range(0, len(self.keys), size)]


@dataclass
class AuditPlan:
    load: Callable[[Any], dict[str, Any]]
    facts: Callable[[dict[str, Any]], dict[str, Any]]
    stages: Callable[[dict[str, Any]], list[Stage]]
    summarise: Callable[[dict[str, Any], Payloads], dict[str, Any]]


def plan_for(req: Any, prep: Any) -> AuditPlan:
    """The plan of ``req``'s audit kind over the prepared data."""
    if req.command == "audit-lm-bias":
        return _bold(req, prep) if req.benchmark == "bold" else _lm_bias(req, prep)
    return {
        "audit-fairness": _fairness,
        "audit-counterfactual": _counterfactual,
        "audit-bios": _bios,
    }[req.command](req, prep)


def options(req: Any, **more: Any) -> dict[str, Any]:
    keys = ("n_boot", "n_perm", "level", "correction", "seed", "min_group_size")
    return {**{k: getattr(req, k) for k in keys if hasattr(req, k)}, **more}


def label_for(labels: Sequence[str], label: str | None) -> str:
    """The label whose probability is compared: ``label``, else positive, else the second."""
    if label is not None:
        if label not in labels:
            raise UserError(f"label {label!r} is not a label of the model ({', '.join(labels)})")
        return label
    if "positive" in labels:
        return "positive"
    if len(labels) == 2:
        return labels[1]
    raise UserError(f"give --label: which label's probability to compare ({', '.join(labels)})")


def _default_positive(labels: Sequence[str]) -> list[str]:
    if len(labels) == 2:
        return ["positive"] if "positive" in labels else [labels[1]]
    return list(labels)


def _classifier(name: str) -> Callable[[Any], dict[str, Any]]:
    return lambda models: {"classifier": models.task(name)}


def _labels(loaded: dict[str, Any], key: str = "classifier") -> list[str]:
    return [str(x) for x in loaded[key].labels]


# --------------------------------------------------------------------------------- fairness
def _fairness(req: Any, prep: Any) -> AuditPlan:
    keys = [f"{i:06d}" for i in range(len(prep.texts))]

    def facts(loaded: dict[str, Any]) -> dict[str, Any]:
        if req.model is not None:
            labels = _labels(loaded)
        else:
            labels = sorted(set(prep.predicted or []) | set(prep.gold or []))
        positive = req.positive_labels or _default_positive(labels)
        unknown = [p for p in positive if p not in labels]
        if unknown:
            raise UserError(f"positive label {unknown[0]!r} is not a label ({', '.join(labels)})")
        stray = sorted(set(prep.gold or []) - set(labels))
        if stray and req.model is not None:
            raise UserError(
                f"gold label(s) {', '.join(stray[:3])} are not labels of {req.model} "
                f"({', '.join(labels)})"
            )
        return {"labels": labels, "positive_labels": positive}

    def stages(facts: dict[str, Any]) -> list[Stage]:
        if req.model is None:
            return []
        compute = lambda m, part: pipeline.predict_chunk(m["classifier"], prep.texts, part)  # noqa: E731
        return [Stage("predicting", keys, compute)]

    def summarise(facts: dict[str, Any], payloads: Payloads) -> dict[str, Any]:
        probs = None
        if req.model is not None:
            preds = [payloads["predicting"][k] for k in keys]
            predicted = [p["label"] for p in preds]
            probs = [p["probs"] for p in preds]
        else:
            predicted = list(prep.predicted or [])
            if prep.scores is not None:
                probs = [{req.positive_labels[0]: s} for s in prep.scores]
        opts = options(req, positive_labels=facts["positive_labels"],
                       intersections=req.intersections)  # fmt: skip
        doc = pipeline.run_fairness(prep.groups, prep.gold, predicted, probs, opts)
        doc["data"] = req.data
        return doc

    load = _classifier(req.model) if req.model is not None else (lambda models: {})
    return AuditPlan(load, facts, stages, summarise)


# ---------------------------------------------------------------------------- counterfactual
def _counterfactual(req: Any, prep: Any) -> AuditPlan:
    pairs = list(prep.items)
    index = {p.key: p for p in pairs}
    chosen: list[Any] = []
    if req.attribution_limit > 0:  # an even sample of pairs, both sides of each explained
        step = max(1, len(pairs) // max(1, req.attribution_limit // 2))
        chosen = pairs[::step][: max(1, req.attribution_limit // 2)]
    texts = [t for p in chosen for t in (p.a, p.b)]
    spans = [s for p in chosen for s in (p.spans_a, p.spans_b)]
    sides = [side for _ in chosen for side in prep.extra["sides"]]
    att_keys = [f"{i:06d}" for i in range(len(texts))]

    def facts(loaded: dict[str, Any]) -> dict[str, Any]:
        return {"label": label_for(_labels(loaded), req.label)}

    def stages(facts: dict[str, Any]) -> list[Stage]:
        label = facts["label"]

        def score(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
            return cf.score_chunk(m["classifier"], [index[k] for k in part], label)

        def explain(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
            at = [int(k) for k in part]
            rows = cf.identity_rows(m["classifier"], [texts[i] for i in at], [spans[i] for i in at],
                                    [sides[i] for i in at], label=label,
                                    method=req.attribution_method)  # fmt: skip
            return {k: {"shares": r} for k, r in zip(part, rows, strict=True)}

        out = [Stage("scoring pairs", [p.key for p in pairs], score)]
        if chosen:  # one explain() call over the sample, as the audit defines it
            out.append(Stage("identity attribution", att_keys, explain, None, "attribution/",
                             "explaining identity words"))  # fmt: skip
        return out

    def summarise(facts: dict[str, Any], payloads: Payloads) -> dict[str, Any]:
        label = facts["label"]
        scored = payloads["scoring pairs"]
        doc = cf.summarise(pairs, [scored[p.key] for p in pairs], sides=prep.extra["sides"],
                           label=label, n_boot=req.n_boot, n_perm=max(req.n_perm, 1000),
                           seed=req.seed)  # fmt: skip
        if chosen:
            got = payloads["identity attribution"]
            rows = [got[k]["shares"] for k in att_keys if got[k]["shares"] is not None]
            att = cf.summarise_shares(rows, method=req.attribution_method, label=label,
                                      n_boot=req.n_boot, seed=req.seed)  # fmt: skip
            doc["attribution"] = att
            doc["conclusions"].append(att["conclusion"])
        doc.update({"kind": "counterfactual", "data": req.data, "swap": req.swap})
        return doc

    return AuditPlan(_classifier(req.model), facts, stages, summarise)


# ------------------------------------------------------------------------------- LM bias
def _lm_bias(req: Any, prep: Any) -> AuditPlan:
    task = {
        "crows-pairs": lambda: lm_bias.pairs_task(prep.items, "crows-pairs"),
        "pairs": lambda: lm_bias.pairs_task(prep.items, "pairs"),
        "bbq": lambda: lm_bias.bbq_task(prep.items),
        "winobias": lambda: lm_bias.winobias_task(prep.items),
    }[req.benchmark]()
    index = {k: i for i, k in enumerate(task.keys)}

    def load(models: Any) -> dict[str, Any]:
        from explainlm.audits.lm_scoring import TextScorer

        lm = language_model(models, req.model)
        return {"scorer": TextScorer(lm, max_batch_tokens=req.max_batch_tokens)}

    def stages(facts: dict[str, Any]) -> list[Stage]:
        compute = lambda m, part: lm_bias.score_chunk(m["scorer"], task, index, part)  # noqa: E731
        return [Stage(f"scoring {task.name}", task.keys, compute)]

    def summarise(facts: dict[str, Any], payloads: Payloads) -> dict[str, Any]:
        got = payloads[f"scoring {task.name}"]
        doc = lm_bias.summarise(task, [got[k] for k in task.keys], correction=req.correction,
                                n_boot=req.n_boot, seed=req.seed)  # fmt: skip
        doc["scorer"] = facts["scorer"]
        doc["kind"] = "lm-bias"
        return doc

    return AuditPlan(load, lambda loaded: {"scorer": loaded["scorer"].describe()}, stages,
                     summarise)  # fmt: skip


def language_model(models: Any, name: str) -> Any:
    from explainlm.audits.lm_scoring import load_language_model
    from explainlm.models.sources import resolve_source

    if resolve_source(name).kind == "causal_lm":
        return models.task(name, "generator").wrapper
    return load_language_model(name)


def _bold(req: Any, prep: Any) -> AuditPlan:
    prompts = list(prep.items)
    keys = [f"{i:06d}" for i in range(len(prompts))]

    def load(models: Any) -> dict[str, Any]:
        return {"generator": models.task(req.model, "generator"),
                "classifier": models.task(req.classifier)}  # fmt: skip

    def stages(facts: dict[str, Any]) -> list[Stage]:
        def generate(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
            return bold_mod.generate_chunk(m["generator"], m["classifier"],
                                           [prompts[int(k)] for k in part], part,
                                           label=facts["label"],
                                           max_new_tokens=req.max_new_tokens, seed=req.seed)  # fmt: skip

        return [Stage("generating", keys, generate, 16)]

    def summarise(facts: dict[str, Any], payloads: Payloads) -> dict[str, Any]:
        got = payloads["generating"]
        doc = bold_mod.summarise_bold(prompts, [got[k] for k in keys], label=facts["label"],
                                      min_group_size=req.min_group_size, n_boot=req.n_boot,
                                      n_perm=max(req.n_perm, 100), seed=req.seed)  # fmt: skip
        doc["classifier"] = req.classifier
        doc["kind"] = "lm-bias"
        return doc

    facts = lambda loaded: {"label": label_for(_labels(loaded), req.label)}  # noqa: E731
    return AuditPlan(load, facts, stages, summarise)


# ---------------------------------------------------------------------------------- bios
def _bios(req: Any, prep: Any) -> AuditPlan:
    bios = list(prep.items)
    index = {b.id: b for b in bios}
    keys = [b.id for b in bios]
    occupations = sorted({b.occupation for b in bios})
    rationales = prep.extra.get("rationales") if req.plausibility else None
    opts = dict(min_group_size=req.min_group_size, n_boot=req.n_boot, seed=req.seed,
                correction=req.correction)  # fmt: skip

    def load(models: Any) -> dict[str, Any]:
        out = {"classifier": models.task(req.model)}
        if req.baseline:
            out["baseline"] = models.task(req.baseline)
        return out

    def facts(loaded: dict[str, Any]) -> dict[str, Any]:
        labels = _labels(loaded)
        stray = [o for o in occupations if o not in labels]
        if stray:
            raise UserError(
                f"{req.model} has no label {stray[0]!r}: is it a Bias-in-Bios classifier?"
            )
        return {"labels": labels}

    def rows_of(model: str) -> Callable[[Any, list[str]], Mapping[str, Any]]:
        def compute(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
            got = bios_mod.predict_bios(m[model], [index[k] for k in part], req.attribution_method)
            return {r["id"]: r for r in got}

        return compute

    def plausibility(facts: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        sets = bios_mod.plausibility_sets(facts["labels"], rationales or [])
        chosen = {f"{kind}/{i:04d}": r for kind, sel in sets for i, r in enumerate(sel)}
        return [kind for kind, _ in sets], chosen

    def stages(facts: dict[str, Any]) -> list[Stage]:
        out = [Stage("model", keys, rows_of("classifier"), 16, "model/", "bios")]
        if rationales:
            chosen = plausibility(facts)[1]

            def explain(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
                return {k: {"explanation": bios_mod.explain_rationale(
                    m["classifier"], chosen[k], req.attribution_method).to_dict()} for k in part}  # fmt: skip

            out.append(Stage("plausibility", list(chosen), explain, 16, "plausibility/"))
        if req.baseline:
            out.append(Stage("baseline", keys, rows_of("baseline"), 16, "baseline/", "bios"))
        return out

    def summarise(facts: dict[str, Any], payloads: Payloads) -> dict[str, Any]:
        rows = [payloads["model"][k] for k in keys]
        doc = bios_mod.summarise_bios(rows, occupations, **opts)
        if rationales:
            doc["plausibility"] = _plausibility(*plausibility(facts), payloads["plausibility"])
        if req.baseline:
            base_rows = [payloads["baseline"][k] for k in keys]
            doc["baseline"] = {"model": req.baseline,
                               **bios_mod.summarise_bios(base_rows, occupations, **opts)}  # fmt: skip
            comp = bios_mod.compare_models(base_rows, rows, occupations, n_boot=req.n_boot,
                                           seed=req.seed)  # fmt: skip
            doc["comparison"] = comp
            doc["conclusions"] = doc["conclusions"] + [
                f"vs {req.baseline}: " + c for c in comp["conclusions"]
            ]
        doc["kind"] = "bios"
        return doc

    def _plausibility(kinds: list[str], chosen: dict[str, Any], got: Mapping[str, Any]) -> list:
        from explainlm.explanation import Explanation

        out = []
        for kind in kinds:
            ks = [k for k in chosen if k.startswith(f"{kind}/")]
            exps = [Explanation.from_dict(dict(got[k]["explanation"])) for k in ks]
            out += bios_mod.plausibility_rows(kind, [chosen[k] for k in ks], exps,
                                              n_boot=req.n_boot, seed=req.seed)  # fmt: skip
        return out

    return AuditPlan(load, facts, stages, summarise)
