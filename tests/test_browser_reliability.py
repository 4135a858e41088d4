# ruff: noqa: F811 - the browser fixtures are imported from test_browser and used as arguments
"""The web app's rough edges of issue 19, in the real browser (Playwright driving Debian's Chromium):
explain as a background job with progress and cancel, the method limit, no silent defaults, the
previous result kept on error, sentence granularity, visible whitespace tokens, the generation
legend, the favicon, and the History page (search, methods column, paging, open scrolls, benchmark
runs as tables with an HTML export)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api
from servers import serve
from test_browser import browser, page, pytestmark, shot  # noqa: F401 - fixtures

from explainlm.server import ModelSpec, ServerConfig, create_app
from explainlm.store import open_store

MAX_METHODS = 4


@pytest.fixture(scope="module")
def served(tiny_bert_dir: Path, tiny_llama_dir: Path) -> Iterator[tuple[str, Any]]:
    models = [
        ModelSpec("tiny-bert", str(tiny_bert_dir)),
        ModelSpec("tiny-llama", str(tiny_llama_dir)),
    ]
    app = create_app(ServerConfig(models=models))
    with serve(app) as url:
        yield url, app


def explain_page(page: Any, url: str, text: str) -> None:
    page.goto(f"{url}/#explain")
    page.wait_for_selector("input[name=explain-method]")
    page.select_option("#explain-model", "tiny-bert")
    page.fill("#explain-text", text)


def boxes(page: Any) -> list[Any]:
    return page.query_selector_all("input[name=explain-method]")


def test_explain_is_a_background_job_with_progress_and_cancel(page: Any, served: Any) -> None:
    url, app = served
    posted: list[dict[str, Any]] = []
    polled: list[str] = []
    page.on(
        "request",
        lambda r: (
            posted.append(json.loads(r.post_data))
            if r.method == "POST" and r.url.endswith("/api/explain")
            else polled.append(r.url)
            if "/api/jobs/" in r.url
            else None
        ),
    )
    explain_page(page, url, "A fine film with a dull ending.")
    lock = app.state.server.registry.lock("tiny-bert")
    lock.acquire()  # the job starts, then waits for the model: it shows progress and can be cancelled
    try:
        page.click("#explain-run")
        page.wait_for_selector("#explain-status .progress button:not([hidden])", timeout=60_000)
        # running (not merely queued: a queued job cancelled never starts a run), on its first stage
        sync_api.expect(page.locator("#explain-status .progress span")).to_contain_text(
            "running", timeout=60_000
        )
        assert posted[-1]["async"] is True
        shot(page, "explain-progress")
        page.click("#explain-status .progress button")
    finally:
        lock.release()
    sync_api.expect(page.locator("#notice")).to_have_text("cancelled", timeout=60_000)
    assert polled  # it polled GET /api/jobs/{id}
    # the job stops at its next cancellation point. Where that is depends on timing: while it
    # waits for the held model no run exists yet, and a job cancelled there never starts one; past
    # that point its run ends cancelled. Either way no run is left running or counted as finished.
    deadline = time.time() + 30
    while time.time() < deadline:
        runs = open_store().list_runs(command="explain")
        if all(r.status != "running" for r in runs):
            break
        time.sleep(0.1)
    assert all(r.status == "cancelled" for r in runs), [(r.status, r.error) for r in runs]
    page.click("#explain-run")  # the same again, not held: it runs to the end
    page.wait_for_selector("#explain-result .card", timeout=60_000)
    assert page.query_selector("#explain-status .progress") is None


def test_method_limit_and_no_silent_defaults(page: Any, served: Any) -> None:
    url, _ = served
    explain_page(page, url, "A fine film.")
    assert (
        page.text_content("fieldset.methods legend .hint") == f"at most {MAX_METHODS} per request"
    )
    for box in boxes(page)[:MAX_METHODS]:
        box.check()
    state = [(b.is_checked(), b.is_disabled()) for b in boxes(page)]
    assert all(c and not d for c, d in state[:MAX_METHODS])
    assert all(d and not c for c, d in state[MAX_METHODS:])  # the rest cannot be ticked
    boxes(page)[0].uncheck()
    assert not any(b.is_disabled() for b in boxes(page))
    for box in boxes(page):
        box.uncheck()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.click("#explain-run")
    sync_api.expect(page.locator("#notice")).to_have_text("Tick at least one method.")
    assert sent == []  # nothing sent: no silent defaults


def test_an_error_keeps_the_previous_result(page: Any, served: Any) -> None:
    url, _ = served
    explain_page(page, url, "A fine film.")
    page.click("#explain-run")
    page.wait_for_selector("#explain-result .card", timeout=60_000)
    first = page.text_content("#explain-result .prediction .text")
    page.fill("#explain-text", "word " * 1000)  # over the server's 4000 characters: refused
    page.click("#explain-run")
    sync_api.expect(page.locator("#notice")).to_contain_text("too long", timeout=60_000)
    assert page.text_content("#explain-result .prediction .text") == first


def test_sentence_granularity(page: Any, served: Any) -> None:
    url, _ = served
    explain_page(page, url, "A fine film. The ending is dull!")
    page.select_option("#explain-granularity", "sentence")
    page.click("#explain-run")
    page.wait_for_selector("#explain-result .card", timeout=60_000)
    units = [s.text_content() for s in page.query_selector_all(".card >> nth=0 >> .heat span.unit")]
    assert units == ["A fine film.", "The ending is dull!"]


def test_generation_headers_show_whitespace_and_its_own_legend(page: Any, served: Any) -> None:
    url, _ = served
    page.goto(f"{url}/#explain")  # the Explain page's generate task, token by token
    page.wait_for_selector("input[name=explain-method]")
    page.select_option("#explain-model", "tiny-llama")
    page.select_option("#explain-task", "generate")
    page.select_option("#explain-granularity", "token")
    page.fill("#explain-text", "Line one\nLine two")
    for box in page.query_selector_all("input[name=explain-method]"):
        box.set_checked(box.get_attribute("value") == "occlusion")
    page.click("#explain-run")
    page.wait_for_selector("#explain-result table.matrix", timeout=60_000)
    heads = [h.text_content() for h in page.query_selector_all("table.matrix th.src")]
    assert all(h.strip() for h in heads)  # no blank header
    assert any("↵" in h for h in heads)
    legend = page.query_selector("#explain-result .legend")
    assert legend.get_attribute("data-kind") == "generate"
    assert "generated token" in legend.text_content() and "label" not in legend.text_content()
    shot(page, "generate-whitespace")


def test_favicon(page: Any, served: Any) -> None:
    url, _ = served
    r = page.request.get(f"{url}/favicon.ico")
    assert r.ok and r.headers["content-type"].startswith("image/svg")


def test_history_search_methods_paging_and_open(page: Any, served: Any) -> None:
    url, _ = served
    store = open_store()
    for i in range(55):
        run = store.start_run("predict", model="m", params={"texts": [f"filler {i}"]})
        store.finish_run(run)
    r = page.request.post(
        f"{url}/api/explain",
        data={
            "text": "An unforgettable zeppelin story.",
            "model": "tiny-bert",
            "methods": ["occlusion"],
        },
    )
    assert r.ok
    page.goto(f"{url}/#history")
    page.wait_for_selector("#history-list tr[data-run]")
    rows = page.locator("#history-list tr[data-run]")
    sync_api.expect(rows).to_have_count(50)
    assert page.text_content("#history-list tr[data-run] >> nth=0 >> td.methods") == "occlusion"
    page.click("#history-more")
    sync_api.expect(rows).to_have_count(56)
    page.fill("#history-search", "zeppelin")  # a word of the explained text
    sync_api.expect(rows).to_have_count(1)
    page.fill("#history-search", "no-such-thing")
    sync_api.expect(page.locator("#history-empty")).to_have_text("No runs match “no-such-thing”.")
    page.fill("#history-search", "zeppelin")
    sync_api.expect(rows).to_have_count(1)
    page.fill("#history-search", "")
    sync_api.expect(rows).to_have_count(50)
    height = page.evaluate("document.getElementById('history-list').offsetHeight")
    assert height > 900  # the run's detail is drawn below a list taller than the window …
    page.click("#history-list a.open >> nth=0")
    page.wait_for_selector("#history-detail .run-view .card")
    top = page.evaluate("document.getElementById('history-detail').getBoundingClientRect().top")
    assert 0 <= top < 800  # … and the page scrolled to it (its start is in the window)


def test_benchmark_run_in_history(
    page: Any, served: Any, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from explainlm.services import benchmark
    from explainlm.services.base import ServiceContext

    url, _ = served
    data = tmp_path / "toy.jsonl"
    rows = [
        {"text": t, "label": str(i % 2), "rationale": " ".join("1" for _ in t.split())}
        for i, t in enumerate(["good film", "dull plot", "fine cast", "bad end"])
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    req = benchmark.BenchmarkRequest(
        model=str(tiny_bert_dir), dataset=str(data), methods="occlusion,random",
        metrics="comprehensiveness,sufficiency", n_boot=200,
    )  # fmt: skip
    res = benchmark.run(req, ServiceContext(store=open_store()))
    page.goto(f"{url}/#history/{res.run_id}")
    page.wait_for_selector("#benchmark-table tr td")
    cells = [
        c.text_content() for c in page.query_selector_all("#benchmark-table tr >> nth=1 >> td")
    ]
    assert cells[0] in ("occlusion", "random") and cells[1] in ("comprehensiveness", "sufficiency")
    assert page.query_selector("#history-detail pre") is None  # no raw JSON
    with page.expect_download() as dl:
        page.click("#history-detail button[data-export=html]")
    html = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "comprehensiveness" in html and "<table" in html
    shot(page, "history-benchmark")
