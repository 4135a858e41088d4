"""Case studies (``explainlm case``) end to end on a small slice: tiny random models trained by the
case itself, the real domain data; the report's key figures equal the stored run's and the numbers
``benchmarks/cases_results.py`` prints for RESULTS; the report rendered in Chromium."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from explainlm.datasets import load_dataset
from explainlm.services.base import ServiceContext
from explainlm.services.case import CaseRequest, load_case, run
from explainlm.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def tiny_case(domain: str, tmp: Path, bert: Path, llama: Path, **kw: Any) -> CaseRequest:
    opts: dict[str, Any] = dict(
        domain=domain, model=str(tmp / "clf"), base_model=str(bert), train_limit=40, epochs=1,
        max_length=32, eval_limit=24, explain_right=1, explain_wrong=1, faithfulness_limit=4,
        importance_limit=12, surrogate_limit=24, llm=str(llama), llm_limit=6, llm_explain=1,
        counterfactuals=1, variants=["rtn4:g32"], compress_limit=4, n_boot=100, n_perm=50,
        output=str(tmp / "out"),
    )  # fmt: skip
    opts.update(kw)
    return CaseRequest(**opts)


def test_domain_loaders_split_and_label(data_dir: Path) -> None:
    train = load_dataset("financial-phrasebank", split="train")
    test = load_dataset("financial-phrasebank", split="test")
    assert len(train) + len(test) == 4846
    assert not {e.text for e in train} & {e.text for e in test}  # identical texts stay together
    tos = load_dataset("unfair-tos", split="all")
    assert len(tos) == 17383 - sum(1 for e in tos if not e.text)  # every non-empty line
    # an independent count over the raw tag files: a level-2 or level-3 tag makes a clause unfair
    raw = 0
    for f in (data_dir / "domains/unfair-tos/tags").glob("*.txt"):
        for line in f.read_text().splitlines():
            raw += any(re.fullmatch(r"[a-z]+[23]", t) for t in line.split())
    assert sum(e.label == "unfair" for e in tos) == raw
    services = {e.meta["service"] for e in load_dataset("unfair-tos", split="test")}
    assert len(services) == 10
    assert not services & {e.meta["service"] for e in load_dataset("unfair-tos", split="train")}
    med = load_dataset("medical-abstracts", split="all")
    assert len(med) == 2888 and len({e.label for e in med}) == 5


def test_finance_case_end_to_end(tiny_bert_dir: Path, tiny_llama_dir: Path, tmp_path: Path) -> None:
    from cases_results import results_markdown

    store = RunStore(tmp_path / "runs.duckdb")
    req = tiny_case("finance", tmp_path, tiny_bert_dir, tiny_llama_dir)
    res = run(req, ServiceContext(store=store))
    doc = load_case(store, res.run_id)
    assert doc["figures"] == res.document["figures"] and doc["run_id"] == res.run_id
    html = Path(res.files[1]).read_text()
    # the report's key figures are the stored run's, number for number
    stored = {f["key"]: f for f in store.get_run(res.run_id).summary["figures"]}
    shown = dict(re.findall(r"<tr data-key='([^']+)'><td>[^<]*</td><td class='num'>([^<]+)<", html))
    assert set(shown) == set(stored) and len(shown) >= 5
    for key, f in stored.items():
        assert shown[key.replace("'", "&#x27;")] == f"{f['value']:.3f}"
    # the RESULTS table is printed from the same stored run
    md = results_markdown(store, res.run_id)
    for f in stored.values():
        assert f"{f['value']:.3f}" in md
    # accuracy equals an independent recount of the stored predictions
    preds = store.results(doc["metrics"]["predict_run"])
    test = load_dataset("financial-phrasebank", split="test", limit=24)
    right = sum(p["label"] == e.label for p, e in zip(preds, test, strict=True))
    assert doc["metrics"]["accuracy"] == pytest.approx(right / 24)
    assert [s["question"] for s in doc["summary"]][0] == "What does the model rely on?"
    for section in ("llm", "counterfactuals", "compression", "faithfulness"):
        assert section in doc


def test_medicine_case_end_to_end(
    tiny_bert_dir: Path, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    store = RunStore(tmp_path / "runs.duckdb")
    req = tiny_case(
        "medicine", tmp_path, tiny_bert_dir, tiny_llama_dir,
        bios_model=str(tmp_path / "bios"), bios_limit=30, max_length=48,
    )  # fmt: skip
    res = run(req, ServiceContext(store=store))
    doc = load_case(store, res.run_id)
    assert {"importance", "surrogate", "bios"} <= set(doc)
    # every step is its own recorded run, named in the report as the evidence
    html = Path(res.files[1]).read_text()
    for step in ("importance", "surrogate", "bios"):
        run_id = doc[step]["run_id"]
        assert store.get_run(run_id).status == "finished" and run_id in html
    assert doc["bios"]["model"]["trained_now"] and "Bias in Bios" in html
    # per-class F1 equals scikit-learn's on the stored predictions
    from sklearn.metrics import f1_score

    preds = [p["label"] for p in store.results(doc["metrics"]["predict_run"])]
    gold = [e.label for e in load_dataset("medical-abstracts", split="test", limit=24)]
    labels = doc["metrics"]["labels"]
    ours = [r["f1"] for r in doc["metrics"]["per_class"]]
    ref = f1_score(gold, preds, labels=labels, average=None, zero_division=0)
    assert ours == pytest.approx(list(ref))
