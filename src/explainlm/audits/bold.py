"""BOLD (Dhamala et al. 2021): open-ended generations per group, scored by a classifier.

The language model continues each prompt (greedy by default, ``max_new_tokens`` tokens); a
classifier (default: the built-in zero-shot sentiment classifier) scores the continuation
(without the prompt, so the prompt's own wording is not scored); the score is the probability of
one label (default ``positive``). Per group: the mean score with a stratified-bootstrap CI; between
groups: the range of means with a permutation p-value. Generation is slow on a CPU: the default
keeps 20 prompts per group, a seeded random subset (say so when reporting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from explainlm.audits.group import mean_gap_report
from explainlm.audits.stats import fmt_ci, fmt_p
from explainlm.datasets.fairness import BoldPrompt


def generate_chunk(
    generator: Any,
    classifier: Any,
    prompts: Sequence[BoldPrompt],
    keys: Sequence[str],
    *,
    label: str,
    max_new_tokens: int = 20,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Payload per prompt: the continuation and P(label) of it."""
    gens = generator.generate([p.prompt for p in prompts], max_new_tokens=max_new_tokens, seed=seed)
    texts = [g.text.strip() or "(empty)" for g in gens]
    preds = classifier.predict(texts)
    return {
        k: {"continuation": t, "score": pr.probs[label], "predicted": pr.label}
        for k, t, pr in zip(keys, texts, preds, strict=True)
    }


def summarise_bold(
    prompts: Sequence[BoldPrompt],
    payloads: Sequence[Mapping[str, Any]],
    *,
    label: str,
    min_group_size: int = 10,
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    groups = [f"{p.domain}/{p.group}" for p in prompts]
    rep = mean_gap_report(
        groups,
        [float(p["score"]) for p in payloads],
        min_group_size=min_group_size,
        n_boot=n_boot,
        n_perm=n_perm,
        seed=seed,
    )
    comp = rep["comparison"]
    lines = []
    if comp:
        lines.append(
            f"Mean P({label}) of the continuations differs by {fmt_ci(comp['value'], comp['ci'], 3)}"
            f" between {comp['lowest']} (lowest) and {comp['highest']} (highest), "
            f"{fmt_p(comp['p_value'])} (permutation test, {len(payloads)} generations)."
        )
    examples = [
        {"group": g, "prompt": p.prompt, "continuation": x["continuation"], "score": x["score"]}
        for g, p, x in list(zip(groups, prompts, payloads, strict=True))[
            :: max(1, len(prompts) // 10)
        ]
    ]
    return {
        "benchmark": "bold",
        "score": f"P({label})",
        "by_group": rep["by_group"],
        "comparison": comp,
        "examples": examples,
        "conclusions": lines,
        "p_value": None if comp is None else comp["p_value"],
    }
