"""End-to-end tests of the web app in a real browser: Playwright driving Debian's Chromium.

The server runs in-process on 127.0.0.1 (free port) with the tiny random models. Screenshots of
every page go to ``test-artifacts/``. Never downloads a browser: Chromium must be /usr/bin/chromium.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api
from servers import serve

from explainlm.server import ModelSpec, ServerConfig, create_app

CHROMIUM = os.environ.get("EXPLAINLM_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
XSS = "<script>alert(1)</script> <img src=x onerror=alert(1)>"

# Outside CI a machine without Chromium skips these (with the reason shown); in CI (.ci/run installs
# Debian's chromium) a missing browser fails loudly instead.
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def server(tiny_bert_dir: Path, tiny_llama_dir: Path) -> Iterator[str]:
    models = [
        ModelSpec("tiny-bert", str(tiny_bert_dir)),
        ModelSpec("tiny-llama", str(tiny_llama_dir)),
    ]
    app = create_app(ServerConfig(models=models))
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.errors = []  # type: ignore[attr-defined]

    def on_dialog(d: Any) -> None:
        pg.dialogs.append(d.message)
        d.dismiss()

    pg.on("dialog", on_dialog)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    assert pg.errors == [], pg.errors  # no JavaScript errors on any page
    ctx.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def explain_in_ui(page: Any, server: str, text: str, methods: tuple[str, ...] = ()) -> None:
    page.goto(f"{server}/#explain")
    page.select_option("#explain-model", "tiny-bert")
    page.fill("#explain-text", text)
    if methods:
        for box in page.query_selector_all("input[name=explain-method]"):
            box.set_checked(box.get_attribute("value") in methods)
    page.click("#explain-run")
    # explain runs as a background job and the previous result stays until the new one arrives:
    # wait for the job to end (the button comes back), then for its cards
    page.wait_for_selector("#explain-run:not([disabled])", timeout=60_000)
    assert page.text_content("#notice") in ("", None), page.text_content("#notice")
    page.wait_for_selector("#explain-result .card", timeout=30_000)


def test_explain_page_heatmaps(page: Any, server: str) -> None:
    explain_in_ui(page, server, "This movie was wonderful, touching and funny.")
    cards = page.query_selector_all("#explain-result .card")
    assert [c.get_attribute("data-method") for c in cards] == ["auto"]  # the default
    assert cards[0].query_selector("h3").text_content().startswith("auto → ")
    assert cards[0].query_selector(".why").text_content().startswith("auto chose ")
    explain_in_ui(
        page, server, "This movie was wonderful, touching and funny.", ("occlusion", "attention")
    )
    cards = page.query_selector_all("#explain-result .card")
    assert [c.get_attribute("data-method") for c in cards] == ["attention", "occlusion"]
    for card in cards:
        units = [s.text_content() for s in card.query_selector_all(".heat span.unit")]
        assert units == ["This", "movie", "was", "wonderful", ",", "touching", "and", "funny", "."]
        assert card.query_selector(".heat span.unit").get_attribute("title").startswith("This: ")
        assert card.query_selector(".summary").text_content().startswith("Predicted")
        # every card carries its faithfulness check: a verdict and its numbers
        assert card.get_attribute("data-verdict") in ("passes", "fails")
        assert "faithfulness check" in card.query_selector(".check .verdict").text_content()
        assert "comprehensiveness" in card.query_selector(".check").text_content()
    page.hover("#explain-result .card .heat span.unit >> nth=3")
    assert page.is_visible(".tip") and page.text_content(".tip").startswith("wonderful: ")
    assert page.text_content(".prediction .predicted") in ("negative", "positive")
    shot(page, "explain")


def test_generate_page_matrix(page: Any, server: str) -> None:
    page.goto(f"{server}/#generate")
    page.select_option("#generate-model", "tiny-llama")
    page.fill("#generate-prompt", "The capital of France is")
    page.fill("#generate-tokens", "3")
    page.click("#generate-run")
    page.wait_for_selector("#generate-result table.matrix", timeout=30_000)
    heads = [h.text_content() for h in page.query_selector_all("table.matrix th.src")]
    assert heads[:5] == ["The", "capital", "of", "France", "is"]
    assert len(page.query_selector_all("table.matrix tbody tr")) == 3
    cell = page.query_selector("table.matrix tbody td:not(.none)")
    assert "←" in cell.get_attribute("title")
    shot(page, "generate")


def test_history_lists_opens_and_compares(page: Any, server: str) -> None:
    text = "A gripping story with a dull ending."
    for methods in (["occlusion"], ["grad_x_input"]):
        r = page.request.post(
            f"{server}/api/explain", data={"text": text, "model": "tiny-bert", "methods": methods}
        )
        assert r.ok
    page.goto(f"{server}/#history")
    page.wait_for_selector("#history-list tr[data-run]")
    rows = page.query_selector_all("#history-list tr[data-run]")
    assert len(rows) == 2 and all(r.query_selector(".preview").text_content() == text for r in rows)
    page.fill("#history-search", "grad_x_input")
    rows_shown = page.locator("#history-list tr[data-run]")
    sync_api.expect(rows_shown).to_have_count(1)
    page.fill("#history-search", "")
    sync_api.expect(rows_shown).to_have_count(2)
    for r in page.query_selector_all("#history-list tr[data-run] input[type=checkbox]"):
        r.check()
    page.click("#history-compare")
    page.wait_for_selector(".compare-view .compare")
    methods = [
        d.get_attribute("data-method") for d in page.query_selector_all(".compare [data-method]")
    ]
    assert sorted(methods) == ["grad_x_input", "occlusion"]
    shot(page, "history-compare")
    page.click("#history-list tr[data-run] a.open >> nth=0")
    page.wait_for_selector("#history-detail .run-view .card")
    assert page.text_content("#history-detail .prediction .text") == text
    shot(page, "history")


def test_xss_inputs_stay_inert(page: Any, server: str, tmp_path: Path) -> None:
    explain_in_ui(page, server, XSS, ("occlusion",))
    assert page.text_content("#explain-result .prediction .text") == XSS
    units = "".join(s.text_content() for s in page.query_selector_all(".card .heat span.unit"))
    assert "<script>" in units and "onerror" in units
    assert page.query_selector("#explain-result script") is None
    assert page.query_selector("#explain-result img") is None
    with page.expect_download() as dl:
        page.click("button[data-export=html]")
    html = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    shot(page, "explain-xss")
    # the exported report itself, opened in the browser: still inert
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")
    page.goto(report.as_uri())
    assert XSS in page.text_content("body")
    page.goto(f"{server}/#history")
    page.wait_for_selector("#history-list tr[data-run]")
    assert page.text_content("#history-list .preview") == XSS
    page.click("#history-list a.open")
    page.wait_for_selector("#history-detail .card")
    assert page.query_selector("#history-detail img") is None
    page.wait_for_timeout(200)
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_api_reference_page(page: Any, server: str) -> None:
    page.goto(f"{server}/docs")
    page.wait_for_selector("#api-docs .card")
    text = page.text_content("#api-docs")
    for ep in (
        "POST /api/explain",
        "POST /api/generate",
        "GET /api/jobs/{job_id}",
        "GET /api/runs",
    ):
        assert ep in text
    shot(page, "api-docs")


def test_method_boxes_come_from_the_method_registry(page: Any, server: str) -> None:
    """Every registered method (GET /api/methods) has a checkbox, attention_rollout included."""
    from explainlm.methods import METHODS

    page.goto(f"{server}/#explain")
    page.wait_for_selector("input[name=explain-method]")
    boxes = page.query_selector_all("input[name=explain-method]")
    values = [b.get_attribute("value") for b in boxes]
    assert sorted(values) == sorted(METHODS) and "attention_rollout" in values
    assert values[:1] == ["auto"]  # the default, ticked, first
    assert [b.is_checked() for b in boxes[:2]] == [True, False]
    title = page.get_attribute("label.check:has(input[value=occlusion])", "title")
    assert title.startswith("Leave-one-out") and "Li, Monroe & Jurafsky" in title
