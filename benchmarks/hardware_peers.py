"""The peer suites of hardware_study.py: LIME against ``lime``, KernelSHAP against SHAP at equal
budget, and KernelSHAP against SHAP at equal error versus exact Shapley values (≤ 12 words)."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from attribution_throughput import Peers, run_lime, run_shap
from hardware_study import sentences
from rounds import Contender, interleave, log

from explainlm import explain


def peers_suite(clf: Any, n: int, rounds: int) -> dict[str, Any]:
    texts = sentences(n)
    peers = Peers(clf)
    labels = list(clf.labels)
    peers.calls = 0
    run_shap(peers, texts, labels)
    budget = int(np.ceil(peers.calls / len(texts)))
    log(f"shap partition: {budget} model rows per sentence")

    def ours(method: str, precision: str, **p: Any) -> Any:
        return lambda: explain(
            texts, clf, [method], method_params={method: p}, precision=precision, check=False
        )

    ks = {"n_samples": budget, "exact_max_features": 0}
    contenders = [
        Contender("lime (package) 1000", lambda: run_lime(peers, texts, labels), len(texts)),
        Contender("explainlm lime 1000 auto", ours("lime", "auto", n_samples=1000), len(texts)),
        Contender("explainlm lime 1000 fp32", ours("lime", "fp32", n_samples=1000), len(texts)),
        Contender(f"shap partition ({budget} evals)", lambda: run_shap(peers, texts, labels), n),
        Contender(f"explainlm kernel_shap {budget} auto", ours("kernel_shap", "auto", **ks), n),
        Contender(f"explainlm kernel_shap {budget} fp32", ours("kernel_shap", "fp32", **ks), n),
    ]
    res = interleave(contenders, rounds)
    names = [c.name for c in contenders]
    return res.to_doc([(names[1], names[0]), (names[2], names[0]), (names[4], names[3])])


# ---------------------------------------------------------------------------- equal error
def word_game(clf: Any, text: str):
    """f(keep-mask over the words) = the probability of the predicted label on the text with the
    other words removed: the game explainlm's kernel_shap (replace=remove) explains."""
    from explainlm.models.words import remove_words, split_words

    spans = split_words(text)
    label = int(np.argmax(clf.predict([text])[0].scores))

    def f(masks: np.ndarray) -> np.ndarray:
        texts = [remove_words(text, spans, m.astype(bool)) for m in np.atleast_2d(masks)]
        scores = clf.scores(clf.encode(texts, allow_empty=True))  # ∅: the empty text, as ours
        return scores.softmax(-1)[:, label].numpy().astype(np.float64)

    return f, len(spans)


def rel_err(phi: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(phi - exact) / max(np.linalg.norm(exact), 1e-12))


def shap_partition_words(f: Any, d: int, budget: int) -> np.ndarray:
    """SHAP's partition explainer on the same word game (features = the d words, absent = removed;
    its default clustering for tabular input is none, so the partition tree is a balanced one)."""
    import shap

    # a balanced binary tree over the words in reading order (adjacent words merge first, as
    # SHAP's text masker does)
    from scipy.cluster.hierarchy import linkage

    masker = shap.maskers.Partition(
        np.zeros((1, d)), clustering=linkage(np.arange(d, dtype=float)[:, None], "single")
    )
    ex = shap.explainers.Partition(lambda x: f(x > 0.5), masker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(ex(np.ones((1, d)), max_evals=budget, silent=True).values).reshape(-1)


def shap_kernel_words(f: Any, d: int, budget: int, seed: int) -> np.ndarray:
    """SHAP's KernelExplainer (its paired sampler, no L1 selection) on the same word game."""
    import shap

    np.random.seed(seed)
    ex = shap.KernelExplainer(lambda x: f(x > 0.5), np.zeros((1, d)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sv = ex.shap_values(np.ones((1, d)), nsamples=budget, l1_reg=False, silent=True)
    return np.asarray(sv).reshape(-1)


def ours_words(clf: Any, text: str, budget: int, sampling: str, seed: int) -> np.ndarray:
    p = {"n_samples": budget, "exact_max_features": 0, "sampling": sampling, "seed": seed}
    e = explain([text], clf, ["kernel_shap"], method_params={"kernel_shap": p}, check=False)
    return np.asarray(e[0].word_scores)


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def shapley_error_suite(clf: Any, n: int, rounds: int) -> dict[str, Any]:
    """Error vs exact Shapley values and seconds per explanation, per tool and budget."""
    texts = sentences(n, max_words=12)
    budgets = (32, 64, 128, 256, 512)
    rows: list[dict[str, Any]] = []
    for text in texts:
        f, d = word_game(clf, text)
        exact_e = explain([text], clf, ["kernel_shap"], precision="fp32", check=False)[0]
        exact = np.asarray(exact_e.word_scores)
        assert exact_e.diagnostics["exact"]
        for b in budgets:
            for r in range(rounds):  # interleaved: every tool at this budget, then again
                tools = [
                    ("explainlm leverage (auto)", ours_words, (clf, text, b, "leverage", r)),
                    ("explainlm kernel (auto)", ours_words, (clf, text, b, "kernel", r)),
                    ("shap KernelExplainer", shap_kernel_words, (f, d, b, r)),
                    ("shap partition", shap_partition_words, (f, d, b)),
                ]
                for tool, fn, fargs in tools:
                    secs, phi = timed(fn, *fargs)
                    rows.append(
                        {
                            "text": text,
                            "d": d,
                            "budget": b,
                            "round": r,
                            "tool": tool,
                            "seconds": secs,
                            "error": rel_err(phi, exact),
                        }
                    )
            log(f"d={d} budget {b} done")
    return summarise_errors(rows)


def summarise_errors(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from rounds import machine_info

    tools = sorted({r["tool"] for r in rows})
    budgets = sorted({r["budget"] for r in rows})
    table = []
    for t in tools:
        for b in budgets:
            sel = [r for r in rows if r["tool"] == t and r["budget"] == b]
            table.append(
                {
                    "tool": t,
                    "budget": b,
                    "error_mean": float(np.mean([r["error"] for r in sel])),
                    "seconds_median": float(np.median([r["seconds"] for r in sel])),
                }
            )
    return {
        "machine": machine_info(),
        "rows": rows,
        "table": table,
        "equal_error": equal_error(table),
    }


def equal_error(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each SHAP tool at its largest budget: the smallest explainlm (leverage) budget whose mean
    error is no larger, and the ratio of their seconds per explanation."""
    out = []
    ours = sorted(
        (r for r in table if r["tool"] == "explainlm leverage (auto)"), key=lambda r: r["budget"]
    )
    for ref_tool in ("shap partition", "shap KernelExplainer"):
        refs = [r for r in table if r["tool"] == ref_tool]
        if not refs:
            continue
        ref = max(refs, key=lambda r: r["budget"])
        match = next((r for r in ours if r["error_mean"] <= ref["error_mean"]), None)
        out.append(
            {
                "reference": ref_tool,
                "reference_budget": ref["budget"],
                "reference_error": ref["error_mean"],
                "reference_seconds": ref["seconds_median"],
                "explainlm_budget": None if match is None else match["budget"],
                "explainlm_error": None if match is None else match["error_mean"],
                "explainlm_seconds": None if match is None else match["seconds_median"],
                "speedup": None
                if match is None
                else ref["seconds_median"] / match["seconds_median"],
            }
        )
    return out
