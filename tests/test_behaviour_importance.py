"""Dataset-level importance: statistics against pandas, CIs against scipy's bootstrap, exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explainlm.behaviour.importance import GlobalImportance, TextRecord, aggregate, features_of
from explainlm.errors import UserError

WORDS = ["good", "bad", "film", "plot", "dull", "great", "the", "a"]


def synthetic(n: int = 120, seed: int = 1) -> list[TextRecord]:
    """Texts of 3–9 random words; each word has a class-dependent score distribution."""
    rng = np.random.default_rng(seed)
    effect = {"good": 0.4, "great": 0.5, "bad": -0.4, "dull": -0.3}
    out = []
    for i in range(n):
        label = "pos" if i % 3 else "neg"
        words = list(rng.choice(WORDS, size=rng.integers(3, 10)))
        sign = 1 if label == "pos" else -1
        scores = [sign * effect.get(w, 0.0) + rng.normal(0, 0.1) for w in words]
        gold = label if i % 5 else ("neg" if label == "pos" else "pos")
        out.append(TextRecord(i, " ".join(words), words, scores, label, label, gold))
    return out


def long_frame(records: list[TextRecord]) -> pd.DataFrame:
    rows = [
        {"text": r.index, "cls": r.label, "feature": w.lower(), "score": s}
        for r in records
        for w, s in zip(r.words, r.scores, strict=True)
    ]
    return pd.DataFrame(rows)


def test_statistics_equal_a_pandas_groupby() -> None:
    recs = synthetic()
    imp = aggregate(recs, min_count=3, n_boot=50)
    df = long_frame(recs)
    g = df.groupby(["cls", "feature"])
    expected = pd.DataFrame(
        {
            "n": g.size(),
            "n_texts": g["text"].nunique(),
            "mean": g["score"].mean(),
            "mean_abs": g["score"].apply(lambda s: s.abs().mean()),
            "sum_abs": g["score"].apply(lambda s: s.abs().sum()),
        }
    )
    counts = df.groupby("cls")["text"].nunique()
    got = {(r["class"], r["feature"]): r for r in imp.table}
    kept = {k for k, row in expected.iterrows() if row["n"] >= 3 and row["n_texts"] >= 2}
    assert set(got) == kept
    for (cls, feat), row in expected.iterrows():
        if (cls, feat) not in kept:
            continue
        r = got[(cls, feat)]
        assert (r["n"], r["n_texts"]) == (row["n"], row["n_texts"])
        assert r["mean"] == pytest.approx(row["mean"], abs=1e-12)
        assert r["mean_abs"] == pytest.approx(row["mean_abs"], abs=1e-12)
        assert r["total"] == pytest.approx(row["sum_abs"] / counts[cls], abs=1e-12)
    assert imp.class_counts == {"neg": 40, "pos": 80}
    top = imp.top("pos", 2)
    assert [r["feature"] for r in top] == ["great", "good"]
    assert [r["feature"] for r in imp.top("neg", 2)] == ["bad", "dull"]


def test_cluster_bootstrap_equals_scipy() -> None:
    """Our vectorised resampling of texts against scipy.stats.bootstrap (paired, percentile).

    Both use 20,000 resamples from different random streams, so their bounds differ by Monte-Carlo
    error only: the standard error of a 2.5% quantile of 20,000 draws is about 1% of the interval's
    width; we allow 5%.
    """
    from scipy.stats import bootstrap

    recs = synthetic(80, seed=3)
    imp = aggregate(recs, min_count=5, n_boot=20000, seed=0)
    for cls, feat in (("pos", "good"), ("pos", "film"), ("neg", "bad")):
        texts = [r for r in recs if r.label == cls]
        s = np.array(
            [sum(v for w, v in zip(r.words, r.scores, strict=True) if w == feat) for r in texts]
        )
        a = np.array(
            [
                sum(abs(v) for w, v in zip(r.words, r.scores, strict=True) if w == feat)
                for r in texts
            ]
        )
        c = np.array([r.words.count(feat) for r in texts], dtype=float)
        row = next(r for r in imp.table if r["class"] == cls and r["feature"] == feat)
        for key, num in (("mean", s), ("mean_abs", a)):
            res = bootstrap(
                (num, c),
                lambda x, y, axis=-1: x.sum(axis) / y.sum(axis),
                paired=True,
                vectorized=True,
                n_resamples=20000,
                method="percentile",
                random_state=1,
            )
            width = res.confidence_interval.high - res.confidence_interval.low
            assert row[f"{key}_low"] == pytest.approx(res.confidence_interval.low, abs=0.05 * width)
            assert row[f"{key}_high"] == pytest.approx(
                res.confidence_interval.high, abs=0.05 * width
            )
        res = bootstrap(
            (a,),
            lambda x, axis=-1: x.mean(axis),
            n_resamples=20000,
            method="percentile",
            random_state=1,
        )
        width = res.confidence_interval.high - res.confidence_interval.low
        assert row["total_low"] == pytest.approx(res.confidence_interval.low, abs=0.05 * width)


def test_ngrams_min_count_grouping_and_rank() -> None:
    feats = features_of(["Not", "good", ",", "really"], [0.1, 0.2, 0.0, 0.3], (1, 2))
    assert feats == [
        ("not", 0.1),
        ("good", 0.2),
        ("really", 0.3),
        ("not good", pytest.approx(0.3)),
    ]
    recs = synthetic()
    assert all(r["n"] >= 30 for r in aggregate(recs, min_count=30, n_boot=20).table)
    bigrams = aggregate(recs, ngram_range=(2, 2), min_count=1, n_boot=20)
    assert all(" " in r["feature"] for r in bigrams.table)
    gold = aggregate(recs, group_by="gold", n_boot=20)
    assert gold.class_counts == {
        "neg": sum(r.gold == "neg" for r in recs),
        "pos": sum(r.gold == "pos" for r in recs),
    }
    one = aggregate(recs, group_by="none", n_boot=20)
    assert one.classes == ["all"]
    by_abs = aggregate(recs, rank="mean_abs", n_boot=20)
    assert by_abs.top("neg", 1)[0]["feature"] in ("bad", "dull", "good", "great")
    rare = [TextRecord(0, "wow", ["wow"], [5.0], "pos", "pos")] + recs
    assert aggregate(rare, min_count=5, n_boot=20).top("pos", 1)[0]["feature"] != "wow"
    assert aggregate(rare, min_count=1, min_texts=1, n_boot=20).top("pos", 1)[0]["feature"] == "wow"
    repeated = [TextRecord(0, "wow " * 6, ["wow"] * 6, [5.0] * 6, "pos", "pos")] + recs
    assert "wow" not in {r["feature"] for r in aggregate(repeated, n_boot=20).table}  # one text
    with pytest.raises(UserError, match="rank must be"):
        aggregate(recs, rank="best")
    with pytest.raises(UserError, match="ngram_range"):
        aggregate(recs, ngram_range=(2, 1))


def test_save_load_and_exports(tmp_path: Path) -> None:
    recs = synthetic()
    recs[0].words[0] = "<script>x</script>"
    imp = aggregate(recs, min_count=1, n_boot=50, meta={"method": "occlusion", "model": "m"})
    back = GlobalImportance.load(imp.save(tmp_path / "g.json"))
    assert back.table == imp.table
    assert back.meta["method"] == "occlusion" and back.top("pos", 3) == imp.top("pos", 3)
    frame = pd.read_parquet(imp.save(tmp_path / "g.parquet"))
    assert len(frame) == len(imp.table) and {"class", "feature", "mean_low"} <= set(frame.columns)
    html = imp.save(tmp_path / "g.html").read_text()
    assert "<script>x" not in html and "<svg" in html and "dataset-level importance" in html.lower()
    assert imp.save(tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in imp.save(tmp_path / "g.svg").read_bytes()[:400]
    with pytest.raises(UserError, match="unknown file type"):
        imp.save(tmp_path / "g.txt")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="not an explainlm global-importance/1 file"):
        GlobalImportance.load(tmp_path / "bad.json")
