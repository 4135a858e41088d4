"""Per audit kind: read and check the data (no model), then run with models from a provider.

``prepare(request)`` raises one-line :class:`~explainlm.errors.UserError` /
:class:`~explainlm.errors.DataFormatError` for bad input before anything loads; ``execute(request,
prepared, models, progress, cache)`` loads models through ``models.task(...)`` and returns the
audit document. Requests are the typed ones of ``services/audit.py`` (used here by attribute).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from explainlm.audits import pipeline
from explainlm.audits.runner import ItemCache, PrefixCache
from explainlm.errors import UserError
from explainlm.progress import Progress


@dataclass
class Prepared:
    """What ``prepare`` read: texts, labels, groups, pairs, items, notes."""

    items: list[Any] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    gold: list[str] | None = None
    groups: dict[str, list[Any]] = field(default_factory=dict)
    predicted: list[str] | None = None
    scores: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def prepare(req: Any) -> Prepared:
    return {
        "audit-fairness": _prepare_fairness,
        "audit-counterfactual": _prepare_counterfactual,
        "audit-lm-bias": _prepare_lm,
        "audit-bios": _prepare_bios,
    }[req.command](req)


def execute(req: Any, prep: Prepared, models: Any, progress: Progress, cache: ItemCache) -> dict:
    runner = {
        "audit-fairness": _fairness,
        "audit-counterfactual": _counterfactual,
        "audit-lm-bias": _lm_bias,
        "audit-bios": _bios,
    }[req.command]
    doc = runner(req, prep, models, progress, cache)
    doc.setdefault("notes", [])
    doc["notes"] = prep.notes + doc["notes"]
    return doc


def _opts(req: Any, **more: Any) -> dict[str, Any]:
    keys = ("n_boot", "n_perm", "level", "correction", "seed", "min_group_size")
    return {**{k: getattr(req, k) for k in keys if hasattr(req, k)}, **more}


# --------------------------------------------------------------------------------- fairness
def _prepare_fairness(req: Any) -> Prepared:
    from explainlm.audits.group import check_groups
    from explainlm.datasets.tables import read_table

    prep = Prepared()
    if req.data.startswith("biosbias"):
        from explainlm.datasets.fairness import load_biosbias

        split = req.data.partition(":")[2] or "test"
        bios = load_biosbias(split=split)[: req.limit]
        prep.texts = [b.text for b in bios]
        prep.gold = [b.occupation for b in bios]
        columns = {"gender": [b.gender for b in bios]}
        unknown = [c for c in req.group_columns if c not in columns]
        if unknown:
            raise UserError(f"biosbias has no column {unknown[0]!r}; its group column is gender")
        prep.groups = {c: columns[c] for c in req.group_columns}
    else:
        extra = [*req.group_columns]
        extra += [c for c in (req.prediction_column, req.score_column) if c]
        t = read_table(
            req.data,
            text_column=req.text_column,
            label_column=req.label_column,
            extra_columns=tuple(extra),
            limit=req.limit,
        )
        prep.texts, prep.gold = t.texts, t.labels
        prep.groups = {c: [str(v).strip() for v in t.extra[c]] for c in req.group_columns}
        if req.prediction_column:
            prep.predicted = [str(v).strip() for v in t.extra[req.prediction_column]]
        if req.score_column:
            prep.scores = _floats(t.extra[req.score_column], t, req.score_column)
            if not req.positive_labels or len(req.positive_labels) != 1:
                raise UserError("--score-column needs exactly one --positive-label it scores")
    for col, values in prep.groups.items():
        check_groups(values, col, req.min_group_size)
    return prep


def _floats(values: Sequence[Any], t: Any, column: str) -> list[float]:
    from explainlm.errors import DataFormatError

    out = []
    for v, line in zip(values, t.lines, strict=True):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise DataFormatError(t.path, line, f"column {column!r}: not a number: {v!r}") from None
    return out


def _default_positive(labels: Sequence[str]) -> list[str]:
    if len(labels) == 2:
        return ["positive"] if "positive" in labels else [labels[1]]
    return list(labels)


def _fairness(req: Any, prep: Prepared, models: Any, progress: Progress, cache: ItemCache) -> dict:
    probs = None
    if req.model is not None:
        clf = models.task(req.model)
        labels = list(clf.labels)
        preds = pipeline.predictions(clf, prep.texts, cache, progress)
        predicted = [p["label"] for p in preds]
        probs = [p["probs"] for p in preds]
    else:
        predicted = list(prep.predicted or [])
        labels = sorted(set(predicted) | set(prep.gold or []))
        if prep.scores is not None:
            probs = [{req.positive_labels[0]: s} for s in prep.scores]
    positive = req.positive_labels or _default_positive(labels)
    unknown = [p for p in positive if p not in labels]
    if unknown:
        raise UserError(f"positive label {unknown[0]!r} is not a label ({', '.join(labels)})")
    if prep.gold is not None:
        stray = sorted(set(prep.gold) - set(labels))
        if stray and req.model is not None:
            raise UserError(
                f"gold label(s) {', '.join(stray[:3])} are not labels of {req.model} "
                f"({', '.join(labels)})"
            )
    doc = pipeline.run_fairness(
        prep.groups,
        prep.gold,
        predicted,
        probs,
        _opts(req, positive_labels=positive, intersections=req.intersections),
    )
    doc["data"] = req.data
    return doc


# ---------------------------------------------------------------------------- counterfactual
def _prepare_counterfactual(req: Any) -> Prepared:
    from explainlm.audits import counterfactual as cf
    from explainlm.audits.swaps import get_swap_list

    prep = Prepared()
    if req.data == "eec":
        from explainlm.datasets.fairness import load_eec

        if req.swap not in cf.SIDES:
            raise UserError(f"EEC pairs swap gender or race, not {req.swap!r}")
        pairs = cf.eec_pairs(load_eec(), req.swap)
        if req.limit is not None and req.limit < len(pairs):  # a seeded sample over all templates
            import random

            total = len(pairs)
            pairs = random.Random(req.seed).sample(pairs, req.limit)
            prep.notes.append(f"EEC: a seeded random sample of {req.limit} of {total} pairs.")
        prep.items = pairs
        prep.extra["sides"] = cf.SIDES[req.swap]
    else:
        from explainlm.datasets.tables import read_table

        swaps = get_swap_list(req.swap)
        t = read_table(req.data, text_column=req.text_column, limit=req.limit)
        prep.items, skipped = cf.text_pairs(t.texts, swaps, [f"line-{n}" for n in t.lines])
        if not prep.items:
            raise UserError(f"{req.data}: no text contains a term of the {swaps.name} swap list")
        prep.extra["sides"] = swaps.sides
        if skipped:
            prep.notes.append(
                f"{skipped} of {len(t.texts)} texts have no (or balanced) {swaps.name} terms "
                "and were left out."
            )
    return prep


def _label_for(clf: Any, label: str | None) -> str:
    if label is not None:
        if label not in clf.labels:
            raise UserError(
                f"label {label!r} is not a label of the model ({', '.join(clf.labels)})"
            )
        return label
    if "positive" in clf.labels:
        return "positive"
    if len(clf.labels) == 2:
        return clf.labels[1]
    raise UserError(f"give --label: which label's probability to compare ({', '.join(clf.labels)})")


def _counterfactual(req: Any, prep: Prepared, models: Any, progress: Progress,
                    cache: ItemCache) -> dict:  # fmt: skip
    clf = models.task(req.model)
    opts = _opts(
        req,
        label=_label_for(clf, req.label),
        sides=prep.extra["sides"],
        attribution_method=req.attribution_method,
        attribution_limit=req.attribution_limit,
    )
    doc = pipeline.run_counterfactual(clf, prep.items, cache, progress, opts)
    doc.update({"kind": "counterfactual", "data": req.data, "swap": req.swap})
    return doc


# ------------------------------------------------------------------------------- LM bias
def _prepare_lm(req: Any) -> Prepared:
    from explainlm.datasets import fairness as data

    prep = Prepared()
    b = req.benchmark
    if b == "crows-pairs":
        prep.items = data.load_crows_pairs(bias_types=req.bias_types, limit=req.limit)
    elif b == "pairs":
        prep.items = data.load_minimal_pairs(req.pairs_file, bias_types=req.bias_types,
                                             limit=req.limit)  # fmt: skip
    elif b == "bbq":
        prep.items = data.load_bbq(categories=req.categories, per_category=req.per_category,
                                   seed=req.seed)[: req.limit]  # fmt: skip
        if req.per_category:
            prep.notes.append(f"BBQ: a seeded random subset of {req.per_category} per category.")
    elif b == "winobias":
        prep.items = data.load_winobias(split=req.split, kinds=req.kinds, limit=req.limit)
    else:
        prep.items = data.load_bold(domains=req.domains, per_group=req.per_group, seed=req.seed)
        prep.items = prep.items[: req.limit]
        prep.notes.append(
            f"BOLD: {req.per_group} seeded random prompts per group, {req.max_new_tokens} new "
            "tokens, greedy decoding (a small sample: generation is slow on a CPU)."
        )
    return prep


def _lm_bias(req: Any, prep: Prepared, models: Any, progress: Progress, cache: ItemCache) -> dict:
    from explainlm.audits import lm_bias

    if req.benchmark == "bold":
        gen = models.task(req.model, "generator")
        clf = models.task(req.classifier)
        label = _label_for(clf, req.label)
        doc = pipeline.run_bold(gen, clf, prep.items, cache, progress,
                                _opts(req, label=label, max_new_tokens=req.max_new_tokens))  # fmt: skip
        doc["classifier"] = req.classifier
    else:
        from explainlm.audits.lm_scoring import TextScorer

        task = {
            "crows-pairs": lambda: lm_bias.pairs_task(prep.items, "crows-pairs"),
            "pairs": lambda: lm_bias.pairs_task(prep.items, "pairs"),
            "bbq": lambda: lm_bias.bbq_task(prep.items),
            "winobias": lambda: lm_bias.winobias_task(prep.items),
        }[req.benchmark]()
        scorer = TextScorer(
            _language_model(models, req.model), max_batch_tokens=req.max_batch_tokens
        )
        doc = pipeline.run_lm_task(scorer, task, cache, progress, _opts(req))
    doc["kind"] = "lm-bias"
    return doc


def _language_model(models: Any, name: str) -> Any:
    from explainlm.audits.lm_scoring import load_language_model
    from explainlm.models.sources import resolve_source

    source = getattr(models, "source", lambda n: n)(name)  # a server's configured name → path
    if resolve_source(source).kind == "causal_lm":
        return models.task(name, "generator").wrapper
    return load_language_model(source)


# ---------------------------------------------------------------------------------- bios
def _prepare_bios(req: Any) -> Prepared:
    from explainlm.datasets.fairness import load_bios_rationales, load_biosbias

    prep = Prepared(items=load_biosbias(split=req.split)[: req.limit])
    if req.plausibility:
        train = {b.text for b in load_biosbias(split="train")}
        rats = [r for k in ("standard", "contrastive") for r in load_bios_rationales(k)]
        kept = [r for r in rats if r.text not in train or req.split == "train"]
        prep.extra["rationales"] = kept
        if len(kept) < len(rats):
            prep.notes.append(
                f"plausibility: {len(rats) - len(kept)} of {len(rats)} rationale bios are in "
                "the training split and were left out."
            )
    prep.notes.append(
        f"Bias in Bios has only 339 bios ({len(prep.items)} in the {req.split} split): several "
        "occupation × gender cells hold a handful of bios, so intervals are wide or absent."
    )
    return prep


def _bios(req: Any, prep: Prepared, models: Any, progress: Progress, cache: ItemCache) -> dict:
    from explainlm.audits import bios as bios_mod

    clf = models.task(req.model)
    occupations = sorted({b.occupation for b in prep.items})
    stray = [o for o in occupations if o not in clf.labels]
    if stray:
        raise UserError(f"{req.model} has no label {stray[0]!r}: is it a Bias-in-Bios classifier?")
    rows = pipeline.bios_rows(clf, prep.items, PrefixCache(cache, "model/"), progress,
                              req.attribution_method)  # fmt: skip
    opts = dict(min_group_size=req.min_group_size, n_boot=req.n_boot, seed=req.seed,
                correction=req.correction)  # fmt: skip
    doc = bios_mod.summarise_bios(rows, occupations, **opts)
    if req.plausibility and prep.extra.get("rationales"):
        progress.start("plausibility", None)
        doc["plausibility"] = bios_mod.plausibility_by_gender(
            clf, prep.extra["rationales"], method=req.attribution_method, n_boot=req.n_boot,
            seed=req.seed,
        )  # fmt: skip
        progress.close()
    if req.baseline:
        base = models.task(req.baseline)
        base_rows = pipeline.bios_rows(base, prep.items, PrefixCache(cache, "baseline/"),
                                       progress, req.attribution_method)  # fmt: skip
        doc["baseline"] = {
            "model": req.baseline,
            **bios_mod.summarise_bios(base_rows, occupations, **opts),
        }
        comp = bios_mod.compare_models(
            base_rows, rows, occupations, n_boot=req.n_boot, seed=req.seed
        )
        doc["comparison"] = comp
        doc["conclusions"] = doc["conclusions"] + [
            f"vs {req.baseline}: " + c for c in comp["conclusions"]
        ]
    doc["kind"] = "bios"
    return doc
