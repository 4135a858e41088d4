"""Dataset summaries of what-if results, each rate and mean with a 95% bootstrap interval.

Skipped texts (one word, already at the target, already misclassified) are counted but left out of
every rate: a success rate is successes over texts actually searched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from explainlm.whatif.anchors import AnchorResult
from explainlm.whatif.attacks import AttackResult
from explainlm.whatif.counterfactuals import CounterfactualResult
from explainlm.whatif.quality import ci


def _skips(results: Sequence[Any]) -> dict[str, int]:
    return dict(Counter(r.skipped for r in results if r.skipped))


def counterfactual_summary(
    results: Sequence[CounterfactualResult], *, seed: int = 0
) -> dict[str, Any]:
    """Success rate, and for the best (fewest-edit) counterfactual of each success: edits, word
    edit distance, perplexity (and its ratio to the original's), similarity; queries per text."""
    searched = [r for r in results if r.skipped is None]
    won = [r for r in searched if r.counterfactuals]
    best = [r.counterfactuals[0] for r in won]
    ratios = [
        c.perplexity / r.perplexity
        for r, c in zip(won, best, strict=True)
        if c.perplexity is not None and r.perplexity
    ]
    return {
        "n_texts": len(results),
        "n_searched": len(searched),
        "skipped": _skips(results),
        "success_rate": ci([float(r.success) for r in searched], seed=seed),
        "edits": ci([c.n_edits for c in best], seed=seed),
        "word_distance": ci([c.word_distance for c in best], seed=seed),
        "perplexity": ci([c.perplexity for c in best if c.perplexity is not None], seed=seed),
        "original_perplexity": ci([r.perplexity for r in won if r.perplexity], seed=seed),
        "perplexity_ratio": ci(ratios, seed=seed),
        "similarity": ci([c.similarity for c in best if c.similarity is not None], seed=seed),
        "counterfactuals_per_success": ci([len(r.counterfactuals) for r in won], seed=seed),
        "queries": ci([r.queries for r in searched], seed=seed),
    }


def attack_summary(results: Sequence[AttackResult], *, seed: int = 0) -> dict[str, Any]:
    """Attack success rate, queries per success, perturbed-word fraction and similarity of the
    successful adversarial texts; with gold labels, accuracy before and under attack."""
    attacked = [r for r in results if r.status != "skipped"]
    won = [r for r in attacked if r.succeeded]
    out: dict[str, Any] = {
        "n_texts": len(results),
        "n_attacked": len(attacked),
        "skipped": _skips(results),
        "success_rate": ci([float(r.succeeded) for r in attacked], seed=seed),
        "queries_per_success": ci([r.queries for r in won], seed=seed),
        "queries": ci([r.queries for r in attacked], seed=seed),
        "perturbed_fraction": ci([r.perturbed_fraction for r in won], seed=seed),
        "similarity": ci([r.similarity for r in won if r.similarity is not None], seed=seed),
    }
    if results and all(r.gold is not None for r in results):
        correct = [r.status != "skipped" for r in results]
        out["accuracy"] = ci([float(c) for c in correct], seed=seed)
        out["accuracy_under_attack"] = ci(
            [float(c and not r.succeeded) for c, r in zip(correct, results, strict=True)],
            seed=seed,
        )
    return out


def anchor_summary(
    results: Sequence[AnchorResult], texts: Sequence[str] | None = None, *, seed: int = 0
) -> dict[str, Any]:
    """Precision, coverage, anchor size, share meeting the threshold, queries; with the dataset's
    ``texts``, each anchor's dataset coverage (share of texts containing all its words)."""
    done = [r for r in results if r.skipped is None]
    out: dict[str, Any] = {
        "n_texts": len(results),
        "n_explained": len(done),
        "skipped": _skips(results),
        "precision": ci([r.precision for r in done if r.precision is not None], seed=seed),
        "coverage": ci([r.coverage for r in done if r.coverage is not None], seed=seed),
        "size": ci([len(r.indices) for r in done], seed=seed),
        "meets_threshold": ci([float(r.meets_threshold) for r in done], seed=seed),
        "queries": ci([r.queries for r in done], seed=seed),
    }
    if texts is not None:
        out["dataset_coverage"] = ci([dataset_coverage(r, texts) for r in done], seed=seed)
    return out


def dataset_coverage(anchor: AnchorResult, texts: Sequence[str]) -> float:
    """Share of ``texts`` that contain every word of the anchor (as words, case-insensitive)."""
    from explainlm.whatif.text import WordText

    need = {w.lower() for w in anchor.words}
    if not need:
        return 1.0
    hits = sum(need <= {w.lower() for w in WordText.of(t).words} for t in texts)
    return hits / max(len(texts), 1)
