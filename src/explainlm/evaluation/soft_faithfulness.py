"""Soft-normalised faithfulness: Soft-NC and Soft-NS (Zhao & Aletras, 2023).

Instead of deleting the top-k features, every feature is perturbed in proportion to its score:
scores are min-max normalised over the text's features to s̃ ∈ [0, 1], and each embedding
element of a feature's tokens is kept with probability 1 − s̃ (soft comprehensiveness) or s̃
(soft sufficiency) — a Bernoulli mask, elsewhere zero. Template and special tokens are kept.
With p = f(x), p′ = f(x′) on the perturbed embeddings and p₀ = f(x₀) on the baseline:

    Soft-C(x, x′) = max(0, p − p′)          Soft-S(x, x′) = 1 − max(0, p − p′)
    Soft-NC = clip(Soft-C(x, x′) / (1 − Soft-S(x, x₀)), 0, 1)
    Soft-NS = clip((Soft-S(x, x′) − Soft-S(x, x₀)) / (1 − Soft-S(x, x₀)), 0, 1)

(both ↑). x₀ (``baseline``): ``remove`` — the text with every feature deleted (the hard
metrics' empty input; the reference code's all-removed input, default); ``zero`` — every feature
token's embedding zeroed, the limit of the soft erasure (on a zero-shot LLM this input is far
from neutral: SmolLM2 reads it as strongly positive, leaving most negative texts undefined). Where p − p₀ ≤ 0 the normalisation is undefined and the value is NaN (the
reference code divides by 1e-4 instead); so is a text whose scores are all equal (no
normalisation). The value is the mean over ``samples`` Bernoulli draws (the paper uses one);
the uniform draws behind the masks depend only on ``seed`` and the text, so every method is
perturbed with the same random numbers (common random numbers for the paired tests).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.evaluation.base import METRICS, Case, Metric
from explainlm.methods.perturbation import evaluate_masks
from explainlm.models.batching import token_budget_batches
from explainlm.models.wrapper import Batch

SOFT_BASELINES = ("zero", "remove")
CITATION = (
    "Zhao & Aletras (2023), Incorporating Attribution Importance for Improving Faithfulness Metrics"
)


def feature_of_tokens(case: Case) -> np.ndarray:
    """The feature index of every token of the case's encoding (-1: never perturbed)."""
    enc = case.item.encoding  # type: ignore[union-attr]
    if case.granularity in ("word", "sentence"):
        owner = np.where(np.asarray(enc.special), -1, np.asarray(enc.word_ids))
        if case.granularity == "sentence":
            from explainlm.engine.masks import sentence_ids

            groups = sentence_ids(enc.text, enc.word_spans)
            owner = np.where(owner >= 0, groups[np.maximum(owner, 0)], -1)
        return owner
    owner = np.full(len(enc), -1)
    owner[enc.text_token_positions] = np.arange(len(enc.text_token_positions))
    return owner


def normalised_scores(scores: np.ndarray) -> np.ndarray | None:
    """Min-max normalisation to [0, 1]; ``None`` when the scores are all equal (or absent)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0 or not np.isfinite(s).all() or s.max() == s.min():
        return None
    return (s - s.min()) / (s.max() - s.min())


@torch.no_grad()
def score_embedding_rows(
    engine: Engine, items: Sequence[Item], rows: Sequence[torch.Tensor]
) -> list[np.ndarray]:
    """Target values of each item with its tokens' embeddings replaced by each of ``rows[i]``.

    ``rows[i]`` is ``[k_i, T_i, H]``; items are packed under the engine's token budget.
    """
    w = engine.wrapper
    out: list[np.ndarray] = [np.zeros(0) for _ in items]
    todo = [i for i, r in enumerate(rows) if len(r)]
    mult = max((len(rows[i]) for i in todo), default=1) * engine.classifier.rows_per_item()
    lengths = [len(items[i].encoding) for i in todo]
    for group in token_budget_batches(lengths, engine.max_batch_tokens, multiplier=mult):
        idx = [todo[g] for g in group]
        batch = w.collate([items[i].encoding for i in idx])
        base = w.embed(batch.input_ids)
        parts, owners, src = [], [], []
        for b, i in enumerate(idx):
            cols = batch.positions(b)
            full = base[b].unsqueeze(0).repeat(len(rows[i]), 1, 1)
            full[:, cols] = rows[i].to(full.dtype)
            parts.append(full)
            owners += [items[i]] * len(rows[i])
            src += [b] * len(rows[i])
        rep = Batch(
            [batch.encodings[s] for s in src],
            batch.input_ids[src],
            batch.attention_mask[src],
            batch.position_ids[src],
            batch.padding_side,
        )
        scores = engine.classifier.class_scores(rep, inputs_embeds=torch.cat(parts)).float()
        engine.passes += 1
        label = torch.tensor([it.label_idx for it in owners], device=scores.device)
        values = engine.target.value(scores, label).cpu().numpy().astype(np.float64)
        start = 0
        for i in idx:
            out[i] = values[start : start + len(rows[i])]
            start += len(rows[i])
    return out


class _SoftErasure(Metric):
    family = "faithfulness"
    higher_is_better = True
    needs = ("model",)
    defaults = {"samples": 4, "seed": 0, "baseline": "remove"}
    keep_important = False  # sufficiency keeps features with probability s̃, comprehensiveness 1 − s̃

    def validate(self) -> None:
        if int(self.params["samples"]) < 1:
            raise UserError(f"{self.name}: samples must be ≥ 1")
        if self.params["baseline"] not in SOFT_BASELINES:
            raise UserError(f"{self.name}: baseline must be one of {', '.join(SOFT_BASELINES)}")

    def uniforms(self, case: Case, shape: tuple[int, ...]) -> torch.Tensor:
        """The draws behind the Bernoulli masks: fixed by the seed and the text only."""
        key = int(self.params["seed"]) * 1_000_003 + zlib.crc32(case.explanation.text.encode())
        gen = torch.Generator(device="cpu").manual_seed(key)
        return torch.rand(shape, generator=gen)

    def perturbed(self, engine: Engine, case: Case, norm: np.ndarray) -> torch.Tensor:
        """``samples`` soft-erased copies ``[k, T, H]`` of the case's token embeddings."""
        item = case.item
        assert item is not None
        w = engine.wrapper
        with torch.no_grad():
            x = w.embed(torch.tensor([item.encoding.input_ids], device=w.device))[0]
        owner = feature_of_tokens(case)
        s = np.where(owner >= 0, norm[np.clip(owner, 0, None)], 0.0)
        keep = s if self.keep_important else 1.0 - s
        keep = np.where(owner >= 0, keep, 1.0)
        k = int(self.params["samples"])
        u = self.uniforms(case, (k, *x.shape))
        mask = u < torch.tensor(keep, dtype=u.dtype).view(1, -1, 1)
        return x.unsqueeze(0) * mask.to(x.device, x.dtype)

    def baseline_values(self, engine: Engine, cases: Sequence[Case]) -> list[float]:
        items = [c.item for c in cases]
        if self.params["baseline"] == "remove":
            masks = [np.zeros((1, c.n), dtype=bool) for c in cases]
            grans = {c.granularity for c in cases}
            out = [float("nan")] * len(cases)
            for g in grans:
                idx = [i for i, c in enumerate(cases) if c.granularity == g]
                vals = evaluate_masks(
                    engine,
                    [items[i] for i in idx],  # type: ignore[misc]
                    [masks[i] for i in idx],
                    g,
                    "remove",
                )
                for i, v in zip(idx, vals, strict=True):
                    out[i] = float(v[0])
            return out
        rows = [self._zeroed(engine, c) for c in cases]
        vals = score_embedding_rows(engine, items, rows)  # type: ignore[arg-type]
        return [float(v[0]) for v in vals]

    def _zeroed(self, engine: Engine, case: Case) -> torch.Tensor:
        item = case.item
        assert item is not None
        w = engine.wrapper
        with torch.no_grad():
            x = w.embed(torch.tensor([item.encoding.input_ids], device=w.device))[0]
        owner = torch.as_tensor(feature_of_tokens(case) >= 0, device=x.device)
        return torch.where(owner.view(-1, 1), torch.zeros_like(x), x).unsqueeze(0)

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        if engine is None:
            raise UserError("this metric needs the model: pass classifier=")
        norms = [normalised_scores(c.scores) for c in cases]
        live = [i for i, nm in enumerate(norms) if nm is not None and cases[i].item is not None]
        out: list[dict[str, Any]] = [
            {"value": float("nan"), "note": "scores are constant: no normalisation"} for _ in cases
        ]
        if not live:
            return out
        sub = [cases[i] for i in live]
        rows = [self.perturbed(engine, cases[i], norms[i]) for i in live]  # type: ignore[arg-type]
        values = score_embedding_rows(engine, [c.item for c in sub], rows)  # type: ignore[misc]
        base = self.baseline_values(engine, sub)
        for i, c, v, p0 in zip(live, sub, values, base, strict=True):
            out[i] = self.value(c.item.target_value, v, p0)  # type: ignore[union-attr]
        return out

    def value(self, p: float, perturbed: np.ndarray, p0: float) -> dict[str, Any]:
        span = p - p0  # 1 − Soft-S(x, x₀)
        if not span > 0:
            return {"value": float("nan"), "note": "the baseline does not lower f: undefined"}
        drop = np.maximum(0.0, p - perturbed)
        per_sample = drop / span if not self.keep_important else 1.0 - drop / span
        per_sample = np.clip(per_sample, 0.0, 1.0)
        return {"value": float(per_sample.mean()), "baseline_value": p0}


@METRICS.register()
class SoftNC(_SoftErasure):
    """Soft normalised comprehensiveness: drop when features are erased ∝ their scores (↑)."""

    name = "soft_nc"
    citation = CITATION


@METRICS.register()
class SoftNS(_SoftErasure):
    """Soft normalised sufficiency: how well features kept ∝ their scores preserve f (↑)."""

    name = "soft_ns"
    keep_important = True
    citation = CITATION
