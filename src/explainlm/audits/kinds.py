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
from explainlm.audits.runner import ItemCache
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
    """Run the audit's plan in this process (stages cached in ``cache``) and add the data notes."""
    from explainlm.audits.plans import plan_for

    doc = pipeline.run_plan(plan_for(req, prep), models, progress, cache)
    return with_notes(doc, prep)


def with_notes(doc: dict[str, Any], prep: Prepared) -> dict[str, Any]:
    doc.setdefault("notes", [])
    doc["notes"] = prep.notes + doc["notes"]
    return doc


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
