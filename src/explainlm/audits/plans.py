"""The plans of the classifier audits (see :mod:`explainlm.audits.stages`): group fairness, the
counterfactual identity audit and Bias in Bios; :func:`plan_for` finds any audit's plan (the
language-model ones are in :mod:`.plans_lm`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from explainlm.audits import bios as bios_mod
from explainlm.audits import counterfactual as cf
from explainlm.audits import pipeline
from explainlm.audits.plans_lm import bold_plan, lm_bias_plan
from explainlm.audits.stages import AuditPlan, Payloads, Stage, label_for, model_labels
from explainlm.errors import UserError


def plan_for(req: Any, prep: Any) -> AuditPlan:
    """The plan of ``req``'s audit kind over the prepared data."""
    if req.command == "audit-lm-bias":
        return bold_plan(req, prep) if req.benchmark == "bold" else lm_bias_plan(req, prep)
    return {
        "audit-fairness": _fairness,
        "audit-counterfactual": _counterfactual,
        "audit-bios": _bios,
    }[req.command](req, prep)


def options(req: Any, **more: Any) -> dict[str, Any]:
    keys = ("n_boot", "n_perm", "level", "correction", "seed", "min_group_size")
    return {**{k: getattr(req, k) for k in keys if hasattr(req, k)}, **more}


def _default_positive(labels: Sequence[str]) -> list[str]:
    if len(labels) == 2:
        return ["positive"] if "positive" in labels else [labels[1]]
    return list(labels)


def _classifier(name: str) -> Callable[[Any], dict[str, Any]]:
    return lambda models: {"classifier": models.task(name)}


# --------------------------------------------------------------------------------- fairness
def _fairness(req: Any, prep: Any) -> AuditPlan:
    keys = [f"{i:06d}" for i in range(len(prep.texts))]

    def facts(loaded: dict[str, Any]) -> dict[str, Any]:
        if req.model is not None:
            labels = model_labels(loaded)
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

        def predict(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
            return pipeline.predict_chunk(m["classifier"], prep.texts, part)

        return [Stage("predicting", keys, predict)]

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
        opts = options(
            req, positive_labels=facts["positive_labels"], intersections=req.intersections
        )
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
        return {"label": label_for(model_labels(loaded), req.label)}

    def stages(facts: dict[str, Any]) -> list[Stage]:
        label = facts["label"]

        def score(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
            return cf.score_chunk(m["classifier"], [index[k] for k in part], label)

        def explain(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
            at = [int(k) for k in part]
            rows = cf.identity_rows(
                m["classifier"],
                [texts[i] for i in at],
                [spans[i] for i in at],
                [sides[i] for i in at],
                label=label,
                method=req.attribution_method,
            )
            return {k: {"shares": r} for k, r in zip(part, rows, strict=True)}

        out = [Stage("scoring pairs", [p.key for p in pairs], score)]
        if chosen:  # one explain() call over the sample, as the audit defines it
            out.append(
                Stage(
                    "identity attribution",
                    att_keys,
                    explain,
                    None,
                    "attribution/",
                    "explaining identity words",
                )
            )
        return out

    def summarise(facts: dict[str, Any], payloads: Payloads) -> dict[str, Any]:
        label = facts["label"]
        scored = payloads["scoring pairs"]
        doc = cf.summarise(
            pairs,
            [scored[p.key] for p in pairs],
            sides=prep.extra["sides"],
            label=label,
            n_boot=req.n_boot,
            n_perm=max(req.n_perm, 1000),
            seed=req.seed,
        )
        if chosen:
            got = payloads["identity attribution"]
            rows = [got[k]["shares"] for k in att_keys if got[k]["shares"] is not None]
            att = cf.summarise_shares(
                rows, method=req.attribution_method, label=label, n_boot=req.n_boot, seed=req.seed
            )
            doc["attribution"] = att
            doc["conclusions"].append(att["conclusion"])
        doc.update({"kind": "counterfactual", "data": req.data, "swap": req.swap})
        return doc

    return AuditPlan(_classifier(req.model), facts, stages, summarise)


# ---------------------------------------------------------------------------------- bios
def _bios(req: Any, prep: Any) -> AuditPlan:
    bios = list(prep.items)
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
        labels = model_labels(loaded)
        stray = [o for o in occupations if o not in labels]
        if stray:
            raise UserError(
                f"{req.model} has no label {stray[0]!r}: is it a Bias-in-Bios classifier?"
            )
        return {"labels": labels}

    def stages(facts: dict[str, Any]) -> list[Stage]:
        out = [Stage("model", keys, _bios_rows(bios, "classifier", req), 16, "model/", "bios")]
        if rationales:
            chosen = _rationales(facts["labels"], rationales)
            out.append(Stage("plausibility", list(chosen), _explain_rationales(chosen, req), 16,
                             "plausibility/"))  # fmt: skip
        if req.baseline:
            out.append(Stage("baseline", keys, _bios_rows(bios, "baseline", req), 16, "baseline/",
                             "bios"))  # fmt: skip
        return out

    def summarise(facts: dict[str, Any], payloads: Payloads) -> dict[str, Any]:
        rows = [payloads["model"][k] for k in keys]
        doc = bios_mod.summarise_bios(rows, occupations, **opts)
        if rationales:
            chosen = _rationales(facts["labels"], rationales)
            doc["plausibility"] = _plausibility(chosen, payloads["plausibility"], req)
        if req.baseline:
            base_rows = [payloads["baseline"][k] for k in keys]
            _add_baseline(doc, req, rows, base_rows, occupations, opts)
        doc["kind"] = "bios"
        return doc

    return AuditPlan(load, facts, stages, summarise)


def _bios_rows(bios: Sequence[Any], model: str, req: Any) -> Callable[..., Mapping[str, Any]]:
    """Per bio (by id): the row of :func:`~explainlm.audits.bios.predict_bios` by ``model``."""
    index = {b.id: b for b in bios}

    def compute(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
        got = bios_mod.predict_bios(m[model], [index[k] for k in part], req.attribution_method)
        return {r["id"]: r for r in got}

    return compute


def _rationales(labels: Sequence[str], rationales: Sequence[Any]) -> dict[str, Any]:
    """The rationales explained, by key ``KIND/NNNN`` (standard ones, then contrastive ones)."""
    sets = bios_mod.plausibility_sets(labels, rationales)
    return {f"{kind}/{i:04d}": r for kind, sel in sets for i, r in enumerate(sel)}


def _explain_rationales(chosen: Mapping[str, Any], req: Any) -> Callable[..., Mapping[str, Any]]:
    def compute(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
        out = {}
        for k in part:  # each bio explained alone, as plausibility_by_gender does
            e = bios_mod.explain_rationale(m["classifier"], chosen[k], req.attribution_method)
            out[k] = {"explanation": e.to_dict()}
        return out

    return compute


def _plausibility(chosen: Mapping[str, Any], got: Mapping[str, Any], req: Any) -> list[Any]:
    from explainlm.explanation import Explanation

    out = []
    for kind in ("standard", "contrastive"):
        ks = [k for k in chosen if k.startswith(f"{kind}/")]
        if ks:
            exps = [Explanation.from_dict(dict(got[k]["explanation"])) for k in ks]
            out += bios_mod.plausibility_rows(kind, [chosen[k] for k in ks], exps,
                                              n_boot=req.n_boot, seed=req.seed)  # fmt: skip
    return out


def _add_baseline(
    doc: dict[str, Any],
    req: Any,
    rows: list[Any],
    base_rows: list[Any],
    occupations: list[str],
    opts: dict[str, Any],
) -> None:
    """The baseline model's summary and the paired before/after comparison with it."""
    doc["baseline"] = {"model": req.baseline,
                       **bios_mod.summarise_bios(base_rows, occupations, **opts)}  # fmt: skip
    comp = bios_mod.compare_models(
        base_rows, rows, occupations, n_boot=req.n_boot, seed=req.seed,
        min_group_size=req.min_group_size,
    )  # fmt: skip
    doc["comparison"] = comp
    doc["conclusions"] = doc["conclusions"] + [
        f"vs {req.baseline}: " + c for c in comp["conclusions"]
    ]
