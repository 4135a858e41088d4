"""Group fairness statistics against independent computations: Fairlearn's MetricFrame (point
values), statsmodels-free closed forms (Holm, BH), scipy (the rates' Wilson intervals, tests), and
a coverage simulation."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from explainlm.audits.fairness import fairness_audit
from explainlm.audits.group import check_groups, group_report, mean_gap_report
from explainlm.audits.stats import adjust_pvalues, binomial_p, paired_summary, wilson_ci
from explainlm.errors import UserError


def _data(n: int = 600, seed: int = 1):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    yt = rng.integers(0, 2, n)
    s = np.clip(0.3 * yt + 0.2 * (g == "a") + rng.random(n) * 0.6, 0, 1)
    return g, yt, s, (s > 0.5).astype(int)


def _cmp(rep: dict, name: str) -> dict:
    return next(c for c in rep["comparisons"] if c["metric"] == name)


def test_point_values_equal_fairlearn_metricframe() -> None:
    g, yt, s, yp = _data()
    rep = group_report(g, yp, yt, s, n_boot=200, n_perm=200, min_group_size=5)
    mf = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "accuracy": accuracy_score,
            "f1": f1_score,
        },
        y_true=yt,
        y_pred=yp,
        sensitive_features=g,
    )
    auc = MetricFrame(metrics=roc_auc_score, y_true=yt, y_pred=s, sensitive_features=g)
    for entry in rep["groups"]:
        for metric in mf.by_group.columns:
            assert entry["metrics"][metric]["value"] == pytest.approx(
                mf.by_group.loc[entry["group"], metric], abs=1e-12
            )
        assert entry["metrics"]["roc_auc"]["value"] == pytest.approx(
            auc.by_group.loc[entry["group"]], abs=1e-12
        )
    kw = {"sensitive_features": g}
    assert _cmp(rep, "demographic_parity_difference")["value"] == pytest.approx(
        demographic_parity_difference(yt, yp, **kw)
    )
    assert _cmp(rep, "disparate_impact")["value"] == pytest.approx(
        demographic_parity_ratio(yt, yp, **kw)
    )
    assert _cmp(rep, "equalized_odds_difference")["value"] == pytest.approx(
        equalized_odds_difference(yt, yp, **kw)
    )
    assert _cmp(rep, "equal_opportunity_difference")["value"] == pytest.approx(
        equal_opportunity_difference(yt, yp, **kw)
    )


def test_calibration_metrics_equal_a_loop() -> None:
    g, yt, s, yp = _data(300, seed=3)
    rep = group_report(g, yp, yt, s, n_boot=100, n_perm=0, min_group_size=5)
    for entry in rep["groups"]:
        m = g == entry["group"]
        gap = float(np.mean(s[m] - yt[m]))
        bins = np.clip((s[m] * 10).astype(int), 0, 9)
        ece = sum(abs(np.sum((s[m] - yt[m])[bins == k])) for k in range(10)) / m.sum()
        assert entry["metrics"]["calibration_gap"]["value"] == pytest.approx(gap)
        assert entry["metrics"]["ece"]["value"] == pytest.approx(ece)


def test_ci_covers_the_true_value_at_the_nominal_rate() -> None:
    """200 simulated datasets from known rates; the 95% CIs of the demographic-parity difference,
    the disparate impact and the equal-opportunity difference must each cover the truth in ≥ 90%."""
    rng = np.random.default_rng(7)
    rate = {"a": 0.6, "b": 0.42}  # selection rates (y_pred ⟂ y_true)
    tpr = {"a": 0.8, "b": 0.6}
    truth = {
        "demographic_parity_difference": 0.18,
        "disparate_impact": 0.42 / 0.6,
    }
    covered = {"demographic_parity_difference": 0, "disparate_impact": 0,
               "equal_opportunity_difference": 0}  # fmt: skip
    n = 300
    for sim in range(200):
        g = np.array(["a"] * n + ["b"] * n)
        yt = rng.integers(0, 2, 2 * n)
        p = np.where(g == "a", rate["a"], rate["b"])
        yp = (rng.random(2 * n) < p).astype(int)
        # equal opportunity: a second prediction whose TPR is set per group
        p_tp = np.where(yt == 1, np.where(g == "a", tpr["a"], tpr["b"]), 0.3)
        yp2 = (rng.random(2 * n) < p_tp).astype(int)
        r1 = group_report(g, yp, n_boot=400, n_perm=0, seed=sim, metrics=["selection_rate"])
        r2 = group_report(g, yp2, yt, n_boot=400, n_perm=0, seed=sim,
                          metrics=["true_positive_rate"])  # fmt: skip
        for name, t in truth.items():
            lo, hi = _cmp(r1, name)["ci"]
            covered[name] += lo <= t <= hi
        lo, hi = _cmp(r2, "equal_opportunity_difference")["ci"]
        covered["equal_opportunity_difference"] += lo <= 0.2 <= hi
    for name, k in covered.items():
        assert k / 200 >= 0.90, (name, k)


def test_permutation_p_value_is_uniform_under_no_difference_and_small_under_a_gap() -> None:
    rng = np.random.default_rng(0)
    ps = []
    for sim in range(60):
        g = rng.choice(["x", "y"], 200)
        yp = rng.integers(0, 2, 200)
        rep = group_report(g, yp, n_boot=100, n_perm=199, seed=sim, metrics=["selection_rate"])
        ps.append(_cmp(rep, "demographic_parity_difference")["p_value"])
    assert np.mean(np.array(ps) < 0.05) < 0.15
    assert 0.35 < np.mean(ps) < 0.65
    g = np.array(["x"] * 100 + ["y"] * 100)
    yp = np.r_[np.ones(70), np.zeros(30), np.ones(40), np.zeros(60)].astype(int)
    rep = group_report(g, yp, n_boot=100, n_perm=999, metrics=["selection_rate"])
    assert _cmp(rep, "demographic_parity_difference")["p_value"] < 0.01


def test_group_rates_have_wilson_intervals_also_at_0_of_n() -> None:
    """Selection rate, TPR, FPR and accuracy are k of n trials: their intervals are scipy's Wilson
    score intervals (at 0/n and n/n too, where a bootstrap interval collapses to a point), at any
    level; F1, AUC, calibration and the gaps keep bootstrap intervals."""
    from scipy.stats import binomtest

    g, yt, s, yp = _data(400, seed=5)
    yp = yp.copy()
    yp[g == "c"] = 0  # group c is never selected: 0/n (and TPR 0/n, FPR 0/n)
    yp[(g == "b") & (yt == 1)] = 1  # group b finds every positive: TPR n/n
    for level in (0.95, 0.9):
        rep = group_report(g, yp, yt, s, n_boot=200, n_perm=0, min_group_size=5, level=level)
        for entry in rep["groups"]:
            m = g == entry["group"]
            pos, neg = m & (yt == 1), m & (yt == 0)
            counts = {  # k and n, counted row by row
                "selection_rate": (sum(int(yp[i]) for i in np.flatnonzero(m)), int(m.sum())),
                "true_positive_rate": (sum(int(yp[i]) for i in np.flatnonzero(pos)), int(pos.sum())),
                "false_positive_rate": (sum(int(yp[i]) for i in np.flatnonzero(neg)), int(neg.sum())),
                "accuracy": (sum(int(yp[i] == yt[i]) for i in np.flatnonzero(m)), int(m.sum())),
            }  # fmt: skip
            for metric, (k, n) in counts.items():
                cell = entry["metrics"][metric]
                ref = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
                assert (cell["value"], cell["n"], cell["ci_method"]) == (k / n, n, "wilson")
                assert cell["ci"] == pytest.approx([ref.low, ref.high], abs=1e-12), metric
            for metric in ("f1", "roc_auc", "calibration_gap", "ece"):
                assert entry["metrics"][metric]["ci_method"] == "bootstrap"
        c = next(x for x in rep["groups"] if x["group"] == "c")["metrics"]
        b = next(x for x in rep["groups"] if x["group"] == "b")["metrics"]
        for cell in (c["selection_rate"], c["true_positive_rate"]):  # 0/n: [0, > 0]
            assert cell["value"] == 0 and cell["ci"][0] == 0 and cell["ci"][1] > 0.02
        assert b["true_positive_rate"]["value"] == 1 and b["true_positive_rate"]["ci"][0] < 0.98
    # scores (not 0/1 decisions) averaged per group: a mean, not a proportion: bootstrap
    means = group_report(g, s, n_boot=200, n_perm=0, metrics=["selection_rate"])
    assert {x["metrics"]["selection_rate"]["ci_method"] for x in means["groups"]} == {"bootstrap"}


def test_small_groups_get_no_interval_and_stay_out_of_gaps() -> None:
    g = np.array(["a"] * 50 + ["b"] * 50 + ["tiny"] * 4)
    yp = np.r_[np.ones(30), np.zeros(20), np.ones(15), np.zeros(35), np.ones(4)].astype(int)
    rep = group_report(g, yp, n_boot=100, n_perm=100, min_group_size=20)
    tiny = next(x for x in rep["groups"] if x["group"] == "tiny")
    assert tiny["metrics"]["selection_rate"]["ci"] is None
    assert "too few (4 < 20)" in tiny["metrics"]["selection_rate"]["note"]
    assert _cmp(rep, "demographic_parity_difference")["groups"] == ["a", "b"]
    assert _cmp(rep, "demographic_parity_difference")["value"] == pytest.approx(0.3)


def test_group_column_errors() -> None:
    with pytest.raises(UserError, match="'sex' is constant"):
        check_groups(["f"] * 10, "sex", 2)
    with pytest.raises(UserError, match="fewer than two groups have at least 20"):
        check_groups(["f"] * 30 + ["m"] * 5, "sex", 20)


def test_fairness_audit_intersections_and_holm() -> None:
    rng = np.random.default_rng(2)
    n = 400
    groups = {
        "sex": rng.choice(["f", "m"], n).tolist(),
        "age": rng.choice(["young", "old"], n).tolist(),
    }
    pred = ["yes" if (s == "m") ^ (rng.random() < 0.3) else "no" for s in groups["sex"]]
    gold = [rng.choice(["yes", "no"]) for _ in range(n)]
    doc = fairness_audit(groups, pred, gold, positive_labels=["yes"], n_boot=200, n_perm=999)
    names = [d["dimension"] for d in doc["dimensions"]]
    assert names == ["sex", "age", "sex × age"]
    inter = doc["dimensions"][2]
    assert {g["group"] for g in inter["groups"]} == {"f & young", "f & old", "m & young", "m & old"}
    comps = [c for d in doc["dimensions"] for c in d["comparisons"]]
    assert [c["p_adjusted"] for c in comps] == pytest.approx(
        adjust_pvalues([c["p_value"] for c in comps], "holm")
    )
    di = _cmp(doc["dimensions"][0], "disparate_impact")
    assert di["four_fifths_violated"] and di["significant"]
    assert any(
        re.search(
            r"disparate impact 0\.\d\d \[0\.\d\d, 0\.\d\d\].*below the four-fifths threshold, p [=<] 0\.0",
            line,
        )
        for line in doc["conclusions"]
    ), doc["conclusions"]
    few = fairness_audit(groups, pred, gold, positive_labels=["yes"], n_boot=100, n_perm=50)
    assert any("too few permutations" in n for n in few["notes"])


def test_adjustments_equal_closed_forms() -> None:
    p = [0.01, 0.04, 0.03, 0.2, None]
    holm = adjust_pvalues(p, "holm")
    # Holm: sorted 0.01, 0.03, 0.04, 0.2 × (4, 3, 2, 1), running max, capped at 1
    assert holm[:4] == pytest.approx([0.04, 0.09, 0.09, 0.2]) and np.isnan(holm[4])
    bh = adjust_pvalues(p, "bh")
    # BH: p·m/rank = 0.04, 0.06, 0.0533, 0.2; running min from the top
    assert bh[:4] == pytest.approx([0.04, 0.0533333, 0.0533333, 0.2], abs=1e-6)
    with pytest.raises(UserError, match="unknown correction"):
        adjust_pvalues([0.1], "bonferonni")


def test_wilson_binomial_and_paired_summary_match_scipy() -> None:
    from scipy.stats import binomtest, wilcoxon

    lo, hi = wilson_ci(37, 80)
    ref = binomtest(37, 80).proportion_ci(method="wilson")
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    assert binomial_p(37, 80) == pytest.approx(binomtest(37, 80).pvalue)
    d = np.random.default_rng(0).normal(0.2, 1, 60)
    s = paired_summary(d, n_boot=500, n_perm=2000)
    assert s["mean"] == pytest.approx(d.mean())
    assert s["p_wilcoxon"] == pytest.approx(wilcoxon(d).pvalue)
    assert s["ci"][0] < d.mean() < s["ci"][1]


def test_mean_gap_report_means_equal_numpy() -> None:
    g = ["a"] * 30 + ["b"] * 30
    v = np.r_[np.linspace(0, 1, 30), np.linspace(0.2, 0.4, 30)]
    rep = mean_gap_report(g, v, n_boot=200, n_perm=200, min_group_size=10)
    means = {r["group"]: r["value"] for r in rep["by_group"]}
    assert means == pytest.approx({"a": 0.5, "b": 0.3})
    assert rep["comparison"]["value"] == pytest.approx(0.2)


def test_docs_fairness_example_runs_and_prints_what_the_page_shows(capsys) -> None:
    """The first Python example of docs/audits.md runs and prints the conclusion quoted there."""
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "audits.md").read_text()
    block = page.split("```python\n", 1)[1].split("```", 1)[0]
    code = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
    exec(compile(code, "docs/audits.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    quoted = " ".join(
        line.lstrip("# ").strip() for line in block.splitlines() if line.startswith("#")
    )
    assert printed == quoted
