"""ReAGent (Zhao & Shan, 2024) with a fixed budget of forward passes.

Each of ``probes`` independent probes keeps a logit-scale importance per feature (starting at 0;
the reference starts at U(0, 1), which a small budget would not wash out). At each of ``steps``
steps a probe replaces every feature with probability ``ratio`` (the reference's 30 %) by random
ordinary vocabulary tokens (one per replaced token; the reference samples from a language model
or by part of speech), measures Δ = f(x) − f(x̃) on the target (default the label's probability,
as in the reference) and adds logit(½ + ½Δ) to the replaced features and logit(½ − ½Δ) to the
others. The score of a feature is the mean over probes of the softmax of its importance.
Instead of the reference's stopping rule (extra passes per step) the budget is fixed:
``probes`` × ``steps`` forward passes per text (default 16 × 4 = 64), all in shared batches.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.methods.base import Method
from explainlm.methods.expected_gradients import ordinary_token_ids
from explainlm.methods.perturbation import _scores, feature_count
from explainlm.methods.retarget import check_score_target, retargeted
from explainlm.methods.sequential_ig import feature_owner


class Reagent(Method):
    """Recursive importance updates from random token replacements (fixed budget)."""

    name = "reagent"
    defaults = {"probes": 16, "steps": 4, "ratio": 0.3, "target": "prob", "seed": 0}
    citation = (
        "Zhao & Shan (2024), ReAGent: A Model-agnostic Feature Attribution Method for Generative "
        "Language Models"
    )

    def validate(self) -> None:
        if int(self.params["probes"]) < 1 or int(self.params["steps"]) < 1:
            raise UserError("reagent: probes and steps must be ≥ 1")
        if not 0 < float(self.params["ratio"]) < 1:
            raise UserError("reagent: ratio must be in (0, 1)")
        check_score_target(self.name, self.params["target"])

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        pool = ordinary_token_ids(engine).numpy()
        n = int(self.params["probes"]) * int(self.params["steps"])
        plans, variants = [], []
        for it in items:
            d = feature_count(it, granularity)
            rng = np.random.default_rng([int(self.params["seed"]), zlib.crc32(it.text.encode())])
            replaced = rng.random((n, d)) < float(self.params["ratio"])
            owner = feature_owner(it, granularity)
            ids = np.asarray(it.encoding.input_ids)
            rows = []
            for row in replaced:
                hit = (owner >= 0) & np.append(row, False)[owner]
                new = np.where(hit, pool[rng.integers(len(pool), size=len(ids))], ids)
                rows.append(dataclasses.replace(it.encoding, input_ids=new.tolist()))
            plans.append(replaced)
            variants.append(rows)
        with retargeted(engine, self.params["target"]) as eng:
            values = eng.score_encodings(items, variants)
            full = eng.score_encodings(items, [[it.encoding] for it in items])
        out = []
        for it, replaced, v, f0 in zip(items, plans, values, full, strict=True):
            scores = self.importance(replaced, float(f0[0]) - v)
            out.append(_scores(it, granularity, scores))
        return out

    def importance(self, replaced: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Mean over probes of softmax(Σ_steps logit(½ ± ½Δ)) (``+`` replaced, ``−`` kept)."""
        probes, steps = int(self.params["probes"]), int(self.params["steps"])
        d = replaced.shape[1]
        if d == 0:
            return np.zeros(0)
        dl = np.clip(delta, -1 + 1e-6, 1 - 1e-6).reshape(probes, steps, 1)
        sign = np.where(replaced.reshape(probes, steps, d), 1.0, -1.0)
        p = 0.5 + 0.5 * sign * dl
        logit = np.log(p) - np.log1p(-p)
        s = logit.sum(1)  # [probes, d]
        s = np.exp(s - s.max(1, keepdims=True))
        return (s / s.sum(1, keepdims=True)).mean(0)
