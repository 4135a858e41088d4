"""Real models: every counterfactual and adversarial text reported in benchmarks/RESULTS.md (saved
by benchmarks/whatif_sst2.py) really changes the model's prediction — re-checked with an independent
``predict`` call — and a small counterfactual search on the built-in LLM does the same."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from explainlm.models import load_model

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "whatif-results"
SAVED = sorted(RESULTS.glob("*.json.gz")) if RESULTS.is_dir() else []


def _load(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.mark.real
@pytest.mark.parametrize("path", SAVED, ids=[p.name for p in SAVED])
def test_reported_edits_really_change_the_prediction(path: Path) -> None:
    doc = _load(path)
    if doc.get("kind") not in ("counterfactual", "attack"):
        pytest.skip("not a counterfactual or attack run")
    model = doc["model"]
    if not (model in ("smollm2-135m", "minilm-l6") or Path(model).is_dir()):
        pytest.skip(f"model {model} is not on this machine")
    clf = load_model(model, device="cpu")
    texts, expected, originals = [], [], []
    for r in doc["results"]:
        if doc["kind"] == "counterfactual":
            for c in r["counterfactuals"]:
                texts.append(c["text"])
                expected.append(c["label"])
                originals.append(r["label"])
        elif r["status"] == "succeeded":
            texts.append(r["adversarial"])
            expected.append(r["new_label"])
            originals.append(r["label"])
    assert texts, "the run reports nothing to re-check"
    predicted = [p.label for p in clf.predict(texts)]
    wrong = [(t, e, p) for t, e, p in zip(texts, expected, predicted, strict=True) if e != p]
    assert not wrong, (
        f"{len(wrong)} of {len(texts)} reported texts do not get their label: {wrong[:3]}"
    )
    assert all(e != o for e, o in zip(expected, originals, strict=True))


@pytest.mark.real
def test_counterfactual_on_the_builtin_llm_flips_it() -> None:
    from explainlm.whatif import CounterfactualConfig, CounterfactualGenerator, Oracle
    from explainlm.whatif.candidates import EmbeddingNeighbours, LLMInfill
    from explainlm.whatif.language_model import LanguageModel

    clf = load_model("smollm2-135m", device="cpu")
    lm = LanguageModel.load("smollm2-135m", share=clf)
    assert lm.wrapper is clf.wrapper  # the classifier lends its weights to the editor
    gen = CounterfactualGenerator(
        Oracle(clf),
        CounterfactualConfig(n=2, max_queries=80, positions=3, per_source=4),
        candidates={"llm": LLMInfill(lm, n_proposals=12), "embedding": EmbeddingNeighbours.load()},
        lm=lm,
    )
    (r,) = gen.generate(["the acting is wooden and the story is dull ."])
    assert r.success and r.queries <= 80
    for c in r.counterfactuals:
        p = clf.predict([c.text])[0]
        assert p.label == c.label != r.label
        assert p.probs[c.label] == pytest.approx(c.probs[c.label], abs=1e-4)
        assert c.perplexity is not None and c.perplexity > 1


CONTRAST = sorted((RESULTS / "contrast").glob("*.json.gz")) if RESULTS.is_dir() else []


@pytest.mark.parametrize("path", CONTRAST, ids=[p.name for p in CONTRAST])
def test_contrast_set_numbers_follow_from_its_examples(path: Path) -> None:
    """The automatic contrast sets in RESULTS: the same counterfactuals as the saved run, and each
    accuracy recomputed (closed form) from the listed examples and the evaluated model's labels."""
    doc = _load(path)
    original = _load(RESULTS / path.name)
    assert doc["results"] == original["results"] and doc["contrast_sets"]
    gold = {r["text"]: r["label"] for r in doc["results"]}
    for cs in doc["contrast_sets"]:
        per: dict[int, list[bool]] = {}
        for e in cs["examples"]:
            per.setdefault(e["index"], []).append(e["predicted"] == e["label"])
        ok = {o["index"]: o["predicted"] == o["label"] for o in cs["originals"]}
        assert sorted(per) == sorted(ok) and len(ok) == cs["n_originals"]
        assert all(gold[o["text"]] == o["label"] for o in cs["originals"])  # editor was right
        acc = sum(ok.values()) / len(ok)
        contrast = sum(sum(v) / len(v) for v in per.values()) / len(per)
        assert cs["original_accuracy"]["mean"] == pytest.approx(acc)
        assert cs["contrast_accuracy"]["mean"] == pytest.approx(contrast)
        assert cs["drop"]["mean"] == pytest.approx(acc - contrast)


@pytest.mark.real
def test_contrast_set_predictions_are_the_models_own() -> None:
    """A sample of the built-in LLM's labels on MiniLM's contrast set, re-predicted independently."""
    path = RESULTS / "contrast" / "minilm-sst2-counterfactual-200.json.gz"
    if not path.exists():
        pytest.skip("no saved contrast set")
    (cs,) = [c for c in _load(path)["contrast_sets"] if c["model"] == "smollm2-135m"]
    sample = cs["examples"][::13]
    clf = load_model("smollm2-135m", device="cpu")
    assert [p.label for p in clf.predict([e["text"] for e in sample])] == [
        e["predicted"] for e in sample
    ]


ANCHORS = [p for p in SAVED if "-anchor-" in p.name]


@pytest.mark.parametrize("path", ANCHORS, ids=[p.name for p in ANCHORS])
def test_anchor_summaries_follow_from_their_results(path: Path) -> None:
    """The anchor numbers in RESULTS (merged slices included): each mean recomputed from the
    per-sentence results, and every reported interval contains its estimate."""
    doc = _load(path)
    done = [r for r in doc["results"] if r["skipped"] is None]
    assert len(done) == doc["summary"]["n_explained"] and done
    for key, values in (
        ("precision", [r["precision"] for r in done]),
        ("coverage", [r["coverage"] for r in done]),
        ("size", [len(r["indices"]) for r in done]),
        ("meets_threshold", [float(r["meets_threshold"]) for r in done]),
    ):
        assert doc["summary"][key]["mean"] == pytest.approx(sum(values) / len(values)), key
    assert all(r["precision_low"] <= r["precision"] <= r["precision_high"] for r in done)
    assert all(r["coverage"] == pytest.approx(0.5 ** len(r["indices"])) for r in done)
