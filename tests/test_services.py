"""The service layer on its own: requests validated without a model, runs recorded (or not),
progress, cancellation, and the web app's job progress."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from explainlm.errors import UserError
from explainlm.progress import Cancelled, Progress
from explainlm.services import (
    SERVICES,
    BenchmarkRequest,
    ExplainRequest,
    GenerateRequest,
    LocalModels,
    PredictRequest,
    ServiceContext,
    build_request,
)
from explainlm.services import explain as explain_service
from explainlm.services import runs as runs_service
from explainlm.store import open_store


class NoModels:
    """A model provider that fails the test if any model is asked for."""

    def wrapper(self, name: str) -> Any:
        raise AssertionError(f"a model was loaded: {name}")

    def task(self, name: str, task: str | None = None, **options: Any) -> Any:
        raise AssertionError(f"a model was loaded: {name}")

    def lock(self, name: str) -> Any:
        return nullcontext()


@pytest.mark.parametrize(
    ("cls", "fields", "message"),
    [
        (ExplainRequest, {"texts": ["a"], "methods": ["gradcam"]}, "unknown method 'gradcam'"),
        (ExplainRequest, {"texts": ["a"], "methods": []}, "no method given"),
        (ExplainRequest, {"texts": ["a"], "methods": "occlusion,occlusion"}, "listed twice"),
        (ExplainRequest, {"texts": ["a"], "params": ["nodot=1"]}, "METHOD.NAME=VALUE"),
        (ExplainRequest, {"texts": ["a"], "contrast": "positive"}, "LABEL:FOIL"),
        (ExplainRequest, {"texts": ["a"], "labels": "good,bad,good"}, "duplicate label(s)"),
        (ExplainRequest, {"texts": ["a"], "task": "summarize"}, "unknown task 'summarize'"),
        (PredictRequest, {"texts": ["a"], "limit": 0}, "--limit must be at least 1, got 0"),
        (GenerateRequest, {"prompt": "  "}, "the prompt is empty"),
        (BenchmarkRequest, {"metrics": "nope"}, "unknown metric 'nope'"),
        (BenchmarkRequest, {"params": ["x.k=1"]}, "unknown method or metric: x"),
        (BenchmarkRequest, {"test": "t-test"}, "test"),
    ],
)
def test_bad_requests_fail_in_one_line_without_a_model(
    cls: Any, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError) as err:
        build_request(cls, **fields)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_texts_are_read_before_the_model_loads(tmp_path: Path) -> None:
    ctx = ServiceContext(store=open_store(), models=NoModels())
    req = ExplainRequest(input=str(tmp_path / "missing.tsv"), methods=["occlusion"])
    with pytest.raises(UserError, match="file not found"):
        explain_service.run(req, ctx)
    assert open_store().list_runs() == []  # nothing ran, nothing recorded


def test_every_service_has_its_request() -> None:
    assert {"predict", "explain", "generate", "benchmark", "lens", "runs list"} <= set(SERVICES)
    for name, service in SERVICES.items():
        assert service.request.command == name and callable(service.run)


class CancelAfter(Progress):
    """Cancels the job once ``n`` units are done (as a user pressing Cancel would)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def advance(self, n: float = 1, message: str | None = None) -> None:
        super().advance(n, message)
        if self.done >= self.n:
            self.cancel()


def test_explain_stores_chunks_and_stops_when_cancelled(tiny_bert_dir: Path) -> None:
    texts = ["good film", "bad plot", "fine acting", "dull", "great", "slow"]
    req = ExplainRequest(
        texts=texts, model=str(tiny_bert_dir), methods=["occlusion", "random"], chunk_size=2
    )
    store = open_store()
    with pytest.raises(Cancelled):
        explain_service.run(req, ServiceContext(store, CancelAfter(2), LocalModels()))
    (run,) = store.list_runs()
    assert (run.status, run.error) == ("cancelled", "cancelled")
    stored = store.load_explanations(run.run_id)
    assert [(e.text, e.method) for e in stored] == [
        (t, m) for t in texts[:2] for m in ("occlusion", "random")
    ]  # the finished chunk is kept; the next one never started
    # uncancelled, chunked: the same numbers as one call with every text
    full = explain_service.run(req, ServiceContext(store, Progress(), LocalModels()))
    from explainlm.attribution import explain

    whole = explain(texts, LocalModels().task(str(tiny_bert_dir)), ["occlusion"])
    assert [e.word_scores for e in full.explanations if e.method == "occlusion"] == [
        pytest.approx(e.word_scores, abs=1e-6) for e in whole
    ]


def test_without_a_store_nothing_is_recorded(tiny_bert_dir: Path) -> None:
    req = PredictRequest(texts=["good", "bad"], model=str(tiny_bert_dir))
    res = SERVICES["predict"].run(req, ServiceContext(store=None))
    assert res.run_id and len(res.predictions) == 2
    assert open_store().list_runs() == []
    doc = res.to_json_doc()
    assert set(doc) == {"run_id", "model", "predictions"}


def test_local_models_load_once_and_cache_tasks(tiny_llama_dir: Path) -> None:
    models = LocalModels()
    a = models.task(str(tiny_llama_dir), labels=["yes", "no"])
    b = models.task(str(tiny_llama_dir), labels=["yes", "no"])
    c = models.task(str(tiny_llama_dir), "generator")
    assert a is b and a is not c and a.wrapper is c.wrapper is models.wrapper(str(tiny_llama_dir))


def test_model_lock_waits_for_the_model_and_stays_cancellable() -> None:
    """Free: held for the block. Busy (another thread holds it): the stage says so, and a cancel
    ends the wait without the lock. A provider whose lock is a plain context manager is entered."""
    import threading

    models, progress = LocalModels(), Progress()
    ctx = ServiceContext(progress=progress, models=models)
    lock = models.lock("m")
    with ctx.model_lock("m"):
        assert lock._is_owned()  # type: ignore[attr-defined]
    assert not lock._is_owned()  # type: ignore[attr-defined]
    held, free = threading.Event(), threading.Event()

    def other_job() -> None:
        with lock:
            held.set()
            free.wait(10)

    threading.Thread(target=other_job, daemon=True).start()
    assert held.wait(10)
    threading.Timer(0.3, progress.cancel).start()
    with pytest.raises(Cancelled), ctx.model_lock("m"):
        pytest.fail("entered while another job held the model")
    assert progress.stage == "waiting for m" and not lock._is_owned()  # type: ignore[attr-defined]
    free.set()

    class Plain:
        def lock(self, name: str) -> Any:
            return nullcontext()

    with ServiceContext(models=Plain()).model_lock("m"):  # type: ignore[arg-type]
        pass


def test_job_progress_follows_the_service_and_cancels_it() -> None:
    from explainlm.server.jobs import Job

    job = Job(id="j", kind="explain", fn=lambda j: None)
    with job.reporter.stage_of("explaining", 4) as progress:
        progress.advance(1)
        assert (job.progress, job.message) == (0.25, "explaining 1/4")
        inner = progress.child(2)  # a chunk of 2 units, half done by the engine
        inner.start("passes", 10)
        inner.advance(5)
        assert job.progress == pytest.approx(0.5)
        inner.close()
        progress.advance(2)
        assert job.progress == pytest.approx(0.75)
        job.reporter.cancel()
        with pytest.raises(Cancelled):
            progress.advance(1)


def test_runs_service_exports_a_benchmark_report(tiny_bert, tmp_path: Path) -> None:
    from explainlm.datasets import RationaleExample
    from explainlm.models import make_task
    from explainlm.services.benchmark import benchmark_examples

    examples = [
        RationaleExample("e0", "good film .", "positive", [1, 0, 0]),
        RationaleExample("e1", "bad plot .", "negative", [1, 0, 0]),
    ]
    req = BenchmarkRequest(
        model="tiny", dataset="toy", methods="occlusion,random", metrics="token_f1"
    )
    res = benchmark_examples(req, ServiceContext(open_store()), make_task(tiny_bert), examples)
    export = runs_service.RunExportRequest(run_id=res.run_id, format="html", destination="body")
    html = runs_service.export_run(export, ServiceContext(open_store())).body
    assert "explainlm benchmark" in html and "token_f1" in html and "occlusion" in html
    shown = runs_service.show_run(
        runs_service.RunShowRequest(run_id=res.run_id, view="results"), ServiceContext(open_store())
    )
    assert shown.doc["benchmark"]["table"] == res.to_json_doc()["table"]
