"""``method="auto"``: the most faithful affordable method for this model and this input.

Selection rule (documented with examples in ``docs/trust.md``):

1. **Pool**: ``candidates`` (default :data:`~explainlm.methods.calibration.CANDIDATES` for a
   classifier: ``context_cite``, ``occlusion``, ``integrated_gradients`` (32 steps),
   ``grad_x_input``, ``attention`` — each costs at most about one 32-step integrated-gradients run
   per text; :data:`GENERATION_CANDIDATES` for generated text), minus the ``forbid`` list and
   the methods the engine cannot serve.
2. **Calibration** (classifiers): the model's calibration (:mod:`explainlm.methods.calibration`,
   remembered per model identity; computed on first use when ``calibrate`` is true) orders the
   pool: methods that beat a random ranking on the calibration texts (95% CI), by their mean
   comprehensiveness (equal at two decimals: the cheaper first), then methods without
   calibration, then the failing ones. Without a
   calibration the pool's own order is used.
3. **Race**: the first ``race`` (default 2) methods of that order that passed calibration (at
   least one: when none passed, the best-calibrated one, with a warning) explain the input in
   the engine's shared passes, each with its faithfulness check.
4. **Choice**, per input: among the raced methods whose check passes on this input
   (:func:`explainlm.report.trust.verdict`), the one with the highest comprehensiveness; when none
   passes, the best one with a warning; for a one-unit text (every ranking is the same), the
   first raced method.

The chosen explanation comes back with ``method="auto"`` and an ``auto`` document: the chosen
method, every raced method's check figures, the methods left out and why, the calibration used,
the total seconds, and a sentence saying why. Cost: the raced methods (≤ ``race``) plus their
checks per input, and once per model the calibration (10 short texts × the pool).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from explainlm.check import CheckConfig, attach_checks
from explainlm.configurable import Param
from explainlm.engine.masks import check_granularity
from explainlm.errors import UserError
from explainlm.methods.base import METHODS, Method, get_method, register_method
from explainlm.methods.calibration import (
    CANDIDATE_PARAMS,
    CANDIDATES,
    Calibration,
    calibrate,
    known,
    model_key,
    remember,
)
from explainlm.report.trust import verdict

GENERATION_CANDIDATES = ("occlusion", "integrated_gradients", "grad_x_input")


def _names(value: str) -> list[str]:
    return [x.strip() for x in str(value or "").split(",") if x.strip()]


@register_method
class AutoMethod(Method):
    """The most faithful affordable method for this model and input (see the module docstring)."""

    name = "auto"
    schema = {
        "candidates": Param("", str, help="comma-separated pool (default: the built-in pool)"),
        "forbid": Param("", str, help="comma-separated methods auto must never use"),
        "race": Param(2, int, ge=1, le=5, help="methods raced on each input"),
        "calibrate": Param(True, bool, help="calibrate the model on first use"),
    }
    citation = "explainlm: selection by the ERASER faithfulness check (DeYoung et al., 2020)"

    def validate(self) -> None:
        for name in _names(self.params["candidates"]) + _names(self.params["forbid"]):
            if name == "auto":
                raise UserError("auto: 'auto' cannot be its own candidate")
            METHODS[name]  # a UserError listing the known methods for a typo

    # ------------------------------------------------------------------ the pool and the race
    def pool(self, engine: Any) -> list[str]:
        generation = not hasattr(engine, "classifier")
        default = GENERATION_CANDIDATES if generation else CANDIDATES
        names = _names(self.params["candidates"]) or list(default)
        forbid = set(_names(self.params["forbid"]))
        out = []
        for name in names:
            if name in forbid:
                continue
            try:
                engine.check_method(get_method(name, **CANDIDATE_PARAMS.get(name, {})))
            except UserError:
                continue
            out.append(name)
        if not out:
            raise UserError(
                "auto: no candidate method is left (forbidden: "
                f"{', '.join(sorted(forbid)) or 'none'}); allow one or name a method"
            )
        return out

    def calibration(self, engine: Any, pool: Sequence[str]) -> Calibration | None:
        clf = getattr(engine, "classifier", None)
        if clf is None or not hasattr(clf, "wrapper"):
            return None
        key = model_key(clf)
        cal = known(key)
        if cal is None and self.params["calibrate"]:
            names = _names(self.params["candidates"]) or list(CANDIDATES)
            with engine.labelled("auto: calibrating"):
                cal = calibrate(
                    clf, names, max_batch_tokens=engine.max_batch_tokens, progress=engine.progress
                )
            remember(cal)
        return cal

    def race_plan(
        self, pool: Sequence[str], cal: Calibration | None
    ) -> tuple[list[str], list[dict[str, Any]], str | None]:
        """(methods to race, methods left out with the reason, a model-level warning)."""
        if cal is None:
            race = list(pool[: self.params["race"]])
            left = [{"method": m, "reason": "not raced (pool order)"} for m in pool[len(race) :]]
            return race, left, None
        rows = {r["method"]: r for r in cal.methods}
        passing = [r["method"] for r in cal.ranked() if r["passes"] and r["method"] in pool]
        unknown = [m for m in pool if m not in rows]
        failing = [r["method"] for r in cal.ranked() if not r["passes"] and r["method"] in pool]
        order = passing + unknown + failing
        warning = None
        race = (passing + unknown)[: self.params["race"]]
        if not race:
            race = order[:1]
            warning = (
                "no candidate method beat a random ranking on this model's calibration texts; "
                f"showing the best-calibrated one ({race[0]}) — do not rely on it"
            )
        left = []
        for m in order:
            if m in race:
                continue
            r = rows.get(m)
            why = (
                "lower in calibration"
                if m in passing or r is None
                else "not faithful for this model"
            )
            left.append({"method": m, "reason": why, "calibration": r})
        return race, left, warning

    # ------------------------------------------------------------------------ the contract
    def attribute(self, engine: Any, items: Sequence[Any], granularity: str = "word") -> list[Any]:
        check_granularity(granularity)
        engine.check_method(self)
        pool = self.pool(engine)
        cal = self.calibration(engine, pool)
        race, left, warning = self.race_plan(pool, cal)
        start = time.perf_counter()
        per_method = []
        for name in race:
            runner = get_method(name, **CANDIDATE_PARAMS.get(name, {}))
            per_method.append(runner.attribute(engine, items, granularity))
        attach_checks(engine, items, per_method, granularity, CheckConfig())
        seconds = (time.perf_counter() - start) / max(len(items), 1)
        out = []
        for i in range(len(items)):
            candidates = [res[i] for res in per_method]
            chosen, doc = choose(candidates, cal, left, warning)
            doc["seconds"] = seconds
            chosen.auto = doc
            chosen.method = self.name
            chosen.seconds = seconds
            if doc.get("warning"):
                chosen.warnings = [*getattr(chosen, "warnings", []), doc["warning"]]
            out.append(chosen)
        return out


def n_features(result: Any) -> int:
    return len(result.feature_scores())


def choose(
    candidates: Sequence[Any],
    cal: Calibration | None,
    left: Sequence[dict[str, Any]],
    warning: str | None,
) -> tuple[Any, dict[str, Any]]:
    """The chosen candidate for one input and the ``auto`` document saying why."""
    d = n_features(candidates[0])
    rows = []
    for c in candidates:
        v = verdict(c.check, c.target, d)
        rows.append(
            {
                "method": c.method,
                "params": dict(c.params),
                "comprehensiveness": c.check["comprehensiveness"],
                "random": (c.check.get("random") or {}).get("comprehensiveness"),
                "drop_top20": v["drop_top20"],
                "k_top20": v["k_top20"],
                "status": v["status"],
                "calibration": cal.row(c.method) if cal else None,
            }
        )
    passing = [i for i, r in enumerate(rows) if r["status"] == "passes"]
    if d <= 1:
        best, rule = 0, "one unit: every ranking is the same; the first raced method is shown"
    elif passing:
        best, rule = max(passing, key=lambda i: rows[i]["comprehensiveness"]), "race"
    else:
        best = max(range(len(rows)), key=lambda i: rows[i]["comprehensiveness"])
        rule = "race (no raced method passed the check on this input)"
        warning = warning or (
            "no raced method passed the faithfulness check on this input; showing the best "
            f"({rows[best]['method']}) — do not rely on it"
        )
    doc = {
        "chosen": rows[best]["method"],
        "rule": rule,
        "candidates": rows,
        "left_out": list(left),
        "calibration": None
        if cal is None
        else {"model_key": cal.model_key, "n_texts": cal.n_texts, "created": cal.created},
        "warning": warning,
    }
    doc["reason"] = reason(doc, candidates[best])
    return candidates[best], doc


def _what(result: Any) -> str:
    target = result.target
    if hasattr(result, "label") and target.split(":")[0] == "prob":
        return f"p({result.label})"
    return f"the target ({target})"


def reason(doc: dict[str, Any], chosen: Any) -> str:
    """ "auto chose occlusion: removing its top 20% of words lowers p(positive) by 0.31; …"."""
    what = _what(chosen)
    rows = doc["candidates"]
    if doc["rule"].startswith("one unit"):
        return (
            f"auto chose {doc['chosen']}: the text is a single unit, so every method ranks it the "
            "same and the check cannot tell them apart; the best-calibrated method is shown."
        )
    first = rows[[r["method"] for r in rows].index(doc["chosen"])]
    unit = "words" if getattr(chosen, "granularity", "word") == "word" else "tokens"
    parts = [
        f"auto chose {doc['chosen']}: removing its top 20% of {unit} ({first['k_top20']}) lowers "
        f"{what} by {_num(first['drop_top20'])} (comprehensiveness {_num(first['comprehensiveness'])}"
        f" vs {_num(first['random'])} for a random ranking)"
    ]
    for r in rows:
        if r is not first:
            tail = {
                "passes": "",
                "fails": " — fails the check on this input",
                "undecided": " (one unit: the check cannot rank methods)",
            }.get(r["status"], "")
            parts.append(f"{r['method']}: {_num(r['drop_top20'])}{tail}")
    for r in doc["left_out"]:
        c = r.get("calibration")
        if r["reason"] == "not faithful for this model" and c:
            parts.append(
                f"{r['method']}: {_num(c['comprehensiveness'])} vs random {_num(c['random'])} on "
                f"the calibration texts — not faithful for this model"
            )
    text = "; ".join(parts) + "."
    return text + (f" Warning: {doc['warning']}." if doc.get("warning") else "")


def _num(v: Any) -> str:
    return "–" if v is None else f"{float(v):.2f}"
