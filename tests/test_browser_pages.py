# ruff: noqa: F811 - the browser fixtures are imported from test_browser and used as arguments
"""The What-if, Audit and Compare pages in the real browser (Playwright driving Debian's Chromium),
against an in-process server with the lexicon classifier (tests/whatif_support.py), the tiny
random BERT and the tiny random LM. What a page shows is checked against independent API calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api
from servers import serve
from test_browser import browser, page, pytestmark, shot  # noqa: F401 - fixtures
from test_server_studies import loans_csv

from explainlm.server import ModelSpec, ServerConfig, create_app

TEXT = "a dull film with a wonderful , fun plot"
WORDS = ["a", "dull", "film", "with", "a", "wonderful", ",", "fun", "plot"]


@pytest.fixture(scope="module")
def served(
    lexicon_bert_dir: Path, tiny_bert_dir: Path, tiny_llama_dir: Path
) -> Iterator[tuple[str, Any]]:
    models = [
        ModelSpec("lexicon", str(lexicon_bert_dir)),
        ModelSpec("tiny-bert", str(tiny_bert_dir)),
        ModelSpec("tiny-llama", str(tiny_llama_dir)),
    ]
    app = create_app(ServerConfig(models=models))
    with serve(app) as url:
        yield url, app


def predict(page: Any, url: str, text: str) -> dict[str, Any]:
    """An independent prediction: POST /api/predict, outside the page's own calls."""
    r = page.request.post(f"{url}/api/predict", data={"text": text, "model": "lexicon"})
    assert r.ok, r.text()
    return r.json()["predictions"][0]


def shown_probs(page: Any, card: str) -> dict[str, float]:
    spans = page.query_selector_all(f"{card} .probs > span")
    return {s.query_selector("b").text_content(): float(s.text_content()[-5:]) for s in spans}


def edit_requests(page: Any) -> list[str]:
    calls: list[str] = []
    page.on(
        "request",
        lambda r: calls.append(r.post_data) if r.url.endswith("/api/whatif/edit") else None,
    )
    return calls


def test_whatif_page_predicts_explains_edits_and_finds_a_counterfactual(
    page: Any, served: Any
) -> None:
    url, app = served
    calls = edit_requests(page)
    page.goto(f"{url}/#whatif")
    page.select_option("#whatif-model", "lexicon")
    page.fill("#whatif-text", TEXT)
    page.click("#whatif-run")
    page.wait_for_selector("#whatif-explanation .check .verdict", timeout=60_000)
    assert page.text_content("#whatif-error") == ""
    # the prediction, and the trusted explanation with its verdict, as the explain page shows it
    original = predict(page, url, TEXT)
    assert page.text_content("#whatif-original .predicted") == original["label"] == "positive"
    assert shown_probs(page, "#whatif-original") == pytest.approx(original["probs"], abs=1e-3)
    assert page.text_content("#whatif-explanation h3").startswith("Why: auto → ")
    verdict = page.text_content("#whatif-explanation .check .verdict")
    assert verdict == "passes the faithfulness check"
    words = page.query_selector_all("#whatif-words span.word")
    assert [w.text_content() for w in words] == WORDS
    assert "wonderful: +" in words[5].get_attribute("title")  # coloured by its score
    shot(page, "whatif")
    # click "dull", remove it: the new prediction at once, next to the original, with the change
    page.click("#whatif-words span[data-index='1']")
    page.click("#whatif-remove")
    page.wait_for_selector("#whatif-edited .predicted")
    edited = predict(page, url, "a film with a wonderful , fun plot")
    assert page.text_content("#whatif-edited .predicted") == edited["label"]
    assert shown_probs(page, "#whatif-edited") == pytest.approx(edited["probs"], abs=1e-3)
    change = edited["probs"]["positive"] - original["probs"]["positive"]
    shown = page.text_content("#whatif-edited .delta[data-label=positive]")
    assert float(shown.split()[-1]) == pytest.approx(change, abs=1e-3) and change > 0
    assert page.text_content("#whatif-diff del") == "dull"
    # typing a replacement is debounced: far fewer calls than keystrokes, the last one shown
    before = len(calls)
    page.click("#whatif-words span[data-index='5']")
    page.type("#whatif-replace", "awful")
    sync_api.expect(page.locator("#whatif-edited .predicted")).to_have_text("negative")
    assert len(calls) - before < len("awful")
    assert page.text_content("#whatif-diff ins") == "awful"
    shot(page, "whatif-edited")
    page.click("#whatif-reset")
    sync_api.expect(page.locator("#whatif-edited")).to_have_count(0)
    # find a counterfactual (deletions only, no LM): its label differs, re-checked independently
    page.click("#whatif-options summary")
    for source in ("llm", "embedding"):
        page.uncheck(f"input[name=whatif-source][value={source}]")
    page.uncheck("#whatif-quality")
    page.click("#whatif-find-cf")
    page.wait_for_selector("#whatif-cf .counterfactual", timeout=60_000)
    card = page.query_selector("#whatif-cf .counterfactual")
    label, cf_text = card.get_attribute("data-label"), card.get_attribute("data-text")
    assert label != original["label"] and predict(page, url, cf_text)["label"] == label
    assert card.query_selector(".cf-label").text_content() == label
    card.query_selector(".cf-apply").click()  # its edits, applied to the text above
    sync_api.expect(page.locator("#whatif-edited .predicted")).to_have_text(label)
    shot(page, "whatif-counterfactual")


def test_whatif_anchor_and_a_cancelled_search(page: Any, served: Any) -> None:
    url, app = served
    page.goto(f"{url}/#whatif")
    page.select_option("#whatif-model", "lexicon")
    page.fill("#whatif-text", "a wonderful story about a family")
    page.click("#whatif-run")
    page.wait_for_selector("#whatif-explanation .check .verdict", timeout=60_000)
    page.click("#whatif-options summary")
    page.fill("#whatif-threshold", "0.9")
    page.click("#whatif-find-anchor")
    page.wait_for_selector("#whatif-anchor-rule", timeout=60_000)
    assert page.text_content("#whatif-anchor-rule") == "IF 'wonderful' THEN positive"
    assert page.text_content("#whatif-anchor .anchor-word") == "wonderful"
    lock = app.state.server.registry.lock("lexicon")
    lock.acquire()  # the search starts, then waits for the model: it can be cancelled
    try:
        page.click("#whatif-find-cf")
        page.click("#whatif-search-status .progress button:not([hidden])", timeout=30_000)
        sync_api.expect(page.locator("#whatif-error")).to_have_text("cancelled", timeout=30_000)
    finally:
        lock.release()
    assert page.is_enabled("#whatif-find-cf")
    xss = "<img src=x onerror=alert(1)> is a <script>alert(1)</script> wonderful film"
    page.fill("#whatif-text", xss)  # user text stays text
    page.click("#whatif-run")
    sync_api.expect(page.locator("#whatif-words")).to_contain_text("script>alert(1)</script")
    page.wait_for_selector("#whatif-explanation .check .verdict", timeout=60_000)
    assert page.query_selector("#page-whatif img, #page-whatif script") is None
    assert page.dialogs == []  # type: ignore[attr-defined]
    page.fill("#whatif-text", "great")  # one word: predicted and explained, but not searched
    page.click("#whatif-run")
    sync_api.expect(page.locator("#whatif-words span.word")).to_have_text(["great"])
    page.wait_for_selector("#whatif-explanation .check .verdict", timeout=60_000)
    page.click("#whatif-find-cf")
    sync_api.expect(page.locator("#whatif-error")).to_contain_text("one word")
    page.fill("#whatif-text", " ")  # bad input: one line, inline
    page.click("#whatif-run")
    sync_api.expect(page.locator("#whatif-error")).to_have_text(
        "text 1 is empty: nothing to predict or explain"
    )


def test_audit_page_runs_a_fairness_audit_on_an_uploaded_table(
    page: Any, served: Any, tmp_path: Path
) -> None:
    import pandas as pd

    url, _ = served
    table = tmp_path / "loans.csv"
    table.write_text(loans_csv())
    page.goto(f"{url}/#audit")
    page.select_option("#audit-kind", "fairness")
    page.select_option("#field-data", "__upload__")
    page.set_input_files("#field-upload", str(table))
    page.fill("#field-group_columns", "sex")
    page.fill("#field-prediction_column", "approved")
    page.fill("#field-positive_labels", "yes")
    page.fill("#field-n_perm", "200")
    page.fill("#field-n_boot", "50")  # below the request model's minimum: an inline error
    page.click("#audit-run")
    sync_api.expect(page.locator("#audit-error")).to_contain_text("n_boot")
    assert "invalid" in page.get_attribute("#field-n_boot", "class")
    page.fill("#field-n_boot", "200")
    page.click("#audit-run")
    page.wait_for_selector(".audit-report table.groups", timeout=60_000)
    assert page.is_hidden("#audit-error")
    assert "disparate impact" in page.text_content(".audit-report .conclusions")
    assert "loans.csv (uploaded)" in page.text_content(".audit-report > .muted")
    frame = pd.read_csv(table)
    expected = frame.assign(y=frame.approved == "yes").groupby("sex").y.mean()
    rows = page.query_selector_all(".audit-report table.groups tr")[1:]
    shown = {r.query_selector("td").text_content(): r.query_selector_all("td")[2] for r in rows}
    for group, rate in expected.items():
        assert shown[group].text_content().split()[0] == f"{rate:.3f}"
    shot(page, "audit")
    page.goto(f"{url}/#history")  # the audit run opens in History too
    page.click("#history-list tr[data-run] a.open >> nth=0")
    page.wait_for_selector("#history-detail .audit-report")


def test_compare_page_starts_lists_and_opens_a_comparison(page: Any, served: Any) -> None:
    url, _ = served
    page.goto(f"{url}/#compare")
    page.wait_for_selector("#compare-empty")
    page.click("#compare-start summary")
    page.select_option("#compare-reference", "lexicon")
    page.fill("#compare-variants", "rtn8")
    page.fill("#compare-limit", "999")  # over the server's limit: an inline error
    page.click("#compare-run")
    sync_api.expect(page.locator("#compare-error")).to_contain_text("at most 200")
    page.fill("#compare-limit", "4")
    page.fill("#compare-rounds", "1")
    page.click("#compare-run")
    page.wait_for_selector("#compare-detail .compare-report table.drift", timeout=90_000)
    runs = page.query_selector_all("#compare-runs tr[data-run]")
    assert len(runs) == 1 and "rtn8:g32:asym" in runs[0].text_content()
    run_id = runs[0].get_attribute("data-run")
    report = page.request.get(f"{url}/api/compare/{run_id}").json()
    accuracy = report["reference"]["accuracy"]["value"]
    shown = page.text_content("#compare-detail .ref-accuracy")
    assert shown.split()[0] == f"{accuracy:.3f}"
    assert page.text_content("#compare-detail table.ranking td:nth-child(2)") == "occlusion"
    page.goto(f"{url}/#history")
    page.goto(f"{url}/#compare/{run_id}")  # a stored run opens from its link
    page.wait_for_selector("#compare-detail table.variants")
    shot(page, "compare")
