"""Case studies (``explainlm case``) end to end on a small slice: tiny random models trained by the
case itself, the real domain data; the report's key figures equal the stored run's and the numbers
``benchmarks/cases_results.py`` prints for RESULTS; the report rendered in Chromium."""

from __future__ import annotations

import csv
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
sys.path.insert(0, str(ROOT / "tests"))


def tiny_case(domain: str, tmp: Path, bert: Path, llama: Path, **kw: Any) -> CaseRequest:
    opts: dict[str, Any] = dict(
        domain=domain, model=str(tmp / "clf"), base_model=str(bert), train_limit=40, epochs=1,
        max_length=32, eval_limit=24, explain_right=1, explain_wrong=1, faithfulness_limit=4,
        importance_limit=12, surrogate_limit=24, llm=str(llama), llm_limit=6, llm_explain=1,
        counterfactuals=1, variants=["rtn4:g32"], compress_limit=4, n_boot=100, n_perm=50,
        output=str(tmp / "out"), compare_methods=[],
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


@pytest.fixture(scope="module")
def finance_case(
    tiny_bert_dir: Path, tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunStore, Any]:
    """The finance case on a small slice, trained from scratch (tiny BERT), recorded in a store."""
    tmp = tmp_path_factory.mktemp("finance")
    store = RunStore(tmp / "runs.duckdb")
    res = run(tiny_case("finance", tmp, tiny_bert_dir, tiny_llama_dir), ServiceContext(store=store))
    return store, res


def test_finance_case_end_to_end(finance_case: tuple[RunStore, Any]) -> None:
    from cases_results import results_markdown

    store, res = finance_case
    doc = load_case(store, res.run_id)
    assert doc["figures"] == res.document["figures"] and doc["run_id"] == res.run_id
    html = Path(res.files[1]).read_text()
    # the report's key figures are the stored run's, number for number
    stored = {f["key"]: f for f in store.get_run(res.run_id).summary["figures"]}
    shown = dict(re.findall(r"<tr data-key='([^']+)'><td>[^<]*</td><td class='num'>([^<]+)<", html))
    assert set(shown) == set(stored) and len(shown) >= 5
    for key, f in stored.items():
        assert shown[key] == f"{f['value']:.3f}"
    # the RESULTS table is printed from the same stored run
    md = results_markdown(store, res.run_id)
    for f in stored.values():
        assert f"| {f['label']} | {f['value']:.3f} |" in md
    # accuracy equals an independent recount of the stored predictions
    preds = store.results(doc["metrics"]["predict_run"])
    test = load_dataset("financial-phrasebank", split="test", limit=24)
    right = sum(p["label"] == e.label for p, e in zip(preds, test, strict=True))
    assert doc["metrics"]["accuracy"] == pytest.approx(right / 24)
    assert [s["question"] for s in doc["summary"]][0] == "What does the model rely on?"
    for section in ("llm", "counterfactuals", "compression", "faithfulness"):
        assert doc[section]["run_id"] if section != "llm" else doc[section]["predict_run"]
    assert doc["model"]["trained_now"] and set(doc["timings"]) >= {"model", "llm", "compression"}


def test_case_report_in_chromium(finance_case: tuple[RunStore, Any]) -> None:
    """The report renders offline in Debian's Chromium: summary first, every figure visible."""
    from test_browser import ARGS, ARTIFACTS, CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright import sync_api

    store, res = finance_case
    figures = store.get_run(res.run_id).summary["figures"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(Path(res.files[1]).as_uri())
        assert page.locator("h2").first.inner_text() == "Summary"
        assert page.locator("dl.summary dt").count() == 4
        cells = page.locator("#figures tr[data-key] td.num:nth-child(2)").all_inner_texts()
        assert cells == [f"{f['value']:.3f}" for f in figures]
        assert page.locator(".card").count() >= 2  # explanation cards with their check
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "case-finance.png"), full_page=True)
        browser.close()
    assert errors == [] and all(u.startswith(("file:", "data:")) for u in requests)


def test_medicine_case_end_to_end(
    tiny_bert_dir: Path, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    store = RunStore(tmp_path / "runs.duckdb")
    req = tiny_case(
        "medicine", tmp_path, tiny_bert_dir, tiny_llama_dir,
        bios_model=str(tmp_path / "bios"), bios_limit=12, bios_epochs=1,
        bios_plausibility=False, max_length=48, faithfulness_limit=2, importance_limit=4,
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


@pytest.mark.parametrize("domain", ["law", "moderation"])
def test_law_and_moderation_cases(
    domain: str, tiny_bert_dir: Path, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    store = RunStore(tmp_path / "runs.duckdb")
    res = run(tiny_case(domain, tmp_path, tiny_bert_dir, tiny_llama_dir, eval_limit=40,
                        importance_limit=6), ServiceContext(store=store))  # fmt: skip
    doc = load_case(store, res.run_id)
    html = Path(res.files[1]).read_text()
    stored = store.get_run(res.run_id).summary["figures"]
    for f in stored:
        assert f"data-key='{f['key']}'><td>" in html and f"{f['value']:.3f}" in html
    if domain == "law":
        assert doc["model"]["labels"] == ["fair", "unfair"] and "llm" in doc
    else:
        assert doc["model"]["params"]["train_file"] == "hatexplain:val"
        from explainlm.services.case_moderation import group_of

        rows = list(csv.DictReader(open(doc["fairness"]["file"], encoding="utf-8")))
        test = load_dataset("hatexplain", split="test", limit=40)
        assert [r["group"] for r in rows] == [group_of(e.text) for e in test]
        assert {"plausibility", "fairness", "identity_mass"} <= set(doc)


def test_bad_domain_is_one_line_before_any_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from explainlm.cli.app import main

    code = main(["case", "astrology", "--model", str(tmp_path / "m")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "domain" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_flagged_harmless_lists_false_positive_rates_highest_first() -> None:
    """From a real fairness audit: its false-positive rates carry Wilson intervals (scipy's, not
    a bootstrap's [0%, 0%] for 0 of 12), quoted as they are, highest rate first."""
    from scipy.stats import binomtest

    from explainlm.audits import fairness_audit
    from explainlm.services.case_summary import flagged_harmless

    groups, gold, predicted = [], [], []
    # group: (harmless posts, of them flagged toxic, toxic posts)
    for name, (harmless, flagged, toxic) in {
        "none": (86, 33, 20), "religion": (20, 13, 10), "sexuality": (12, 0, 10),
        "origin": (4, 2, 10),
    }.items():  # fmt: skip
        groups += [name] * (harmless + toxic)
        gold += ["harmless"] * harmless + ["toxic"] * toxic
        predicted += ["toxic"] * flagged + ["harmless"] * (harmless - flagged) + ["toxic"] * toxic
    doc = fairness_audit({"group": groups}, predicted, gold, positive_labels=["toxic"],
                         min_group_size=10, n_boot=200, n_perm=0)  # fmt: skip
    text = flagged_harmless(doc)

    def quoted(name: str, k: int, n: int) -> str:
        lo, hi = binomtest(k, n).proportion_ci(method="wilson")
        return f"{name} {100 * k / n:.0f}% (95% CI {100 * lo:.0f}%–{100 * hi:.0f}%) of {n}"

    assert text.index(quoted("religion", 13, 20)) < text.index(quoted("none", 33, 86))
    assert quoted("sexuality", 0, 12) in text and "sexuality 0% (95% CI 0%–24%)" in text
    assert text.endswith("Too few harmless posts for an interval: origin.")
    assert flagged_harmless({"dimensions": []}) == ""


def test_bad_case_options_fail_before_any_training(capsys: pytest.CaptureFixture[str]) -> None:
    from explainlm.cli.app import main
    from explainlm.errors import UserError
    from explainlm.services.case import CaseRequest, build_request

    assert main(["case", "finance", "--variants", "int9"]) == 2
    err = capsys.readouterr().err
    assert "unknown variant 'int9'" in err and "Traceback" not in err
    with pytest.raises(UserError, match="unknown method 'nope'"):
        build_request(CaseRequest, domain="finance", compare_methods=["nope"])
