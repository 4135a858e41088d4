"""A run keeps what it started with: a resume (local, web, or a Ray shard) runs the precision plan
recorded when the run started, whatever the per-machine cache of ``auto`` says by then; and a run
stored before KernelSHAP's ``sampling`` parameter existed resumes with the sampling it ran with.

The cache is written here as the measurement would write it (``$EXPLAINLM_HOME/autotune.json``,
keyed by machine and model), so ``auto`` answers from it; nothing is measured.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from explainlm import explain
from explainlm.datasets import RationaleExample
from explainlm.models import autotune as cal
from explainlm.models.precision import PrecisionPlan
from explainlm.progress import Cancelled, Progress
from explainlm.services import BenchmarkRequest, ExplainRequest, LocalModels, ServiceContext
from explainlm.services import explain as explain_service
from explainlm.services.benchmark import benchmark_examples, stored_request
from explainlm.store import open_store

TEXTS = ["a good film", "a dull plot", "fine acting", "slow and long", "great music", "bad story"]
METHODS = ["occlusion", "grad_x_input"]  # a forward and a gradient method: both follow the plan
BF16 = PrecisionPlan("bf16", "bf16", "weights", "auto", source="measured", reason="a bf16 cache")
FP32 = PrecisionPlan("fp32", "fp32", "weights", "auto", source="measured", reason="an fp32 cache")


class StopAfter(Progress):
    """Cancels the job (``cancel``) or presses Ctrl-C (``interrupt``) once ``n`` units are done."""

    def __init__(self, n: int, how: str = "cancel") -> None:
        super().__init__()
        self.n, self.how = n, how

    def advance(self, n: float = 1, message: str | None = None) -> None:
        super().advance(n, message)
        if self.done >= self.n:
            if self.how == "interrupt":
                raise KeyboardInterrupt
            self.cancel()


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, PrecisionPlan], None]:
    """``write(task, plan)``: this machine's cache now says ``plan`` for ``task``'s model (auto is
    not pinned; tiny models are looked up like big ones; a measurement fails the test)."""
    monkeypatch.delenv("EXPLAINLM_PRECISION")
    monkeypatch.setattr(cal, "MIN_PARAMETERS", 0)
    monkeypatch.setattr(cal, "measure", lambda task: pytest.fail("measured: the cache answers"))

    def write(task: Any, plan: PrecisionPlan) -> None:
        entry = {"plan": plan.to_dict(), "measured": {}, "date": 0.0, "version": cal.CACHE_VERSION}
        cal.cache_path().parent.mkdir(parents=True, exist_ok=True)
        cal.cache_path().write_text(json.dumps({cal._cache_key(task): entry}))
        assert cal.resolve_precision("auto", task).mode("forward") == plan.mode("forward")

    return write


def scores(explanations: Any) -> list[tuple[str, str, list[float]]]:
    return [(e.text, e.method, list(map(float, e.word_scores))) for e in explanations]


def test_a_resumed_explain_run_keeps_the_plan_it_started_with(tiny_bert_dir, cache) -> None:
    models = LocalModels()
    clf = models.task(str(tiny_bert_dir))
    cache(clf, BF16)
    req = ExplainRequest(texts=TEXTS, model=str(tiny_bert_dir), methods=METHODS, chunk_size=2)
    store = open_store()
    with pytest.raises(Cancelled):
        explain_service.run(req, ServiceContext(store, StopAfter(2), models))
    (run,) = store.list_runs()
    recorded = run.params["request"]["precision_plan"]
    assert (recorded["forward"], recorded["backward"], recorded["source"]) == (
        "bf16",
        "bf16",
        "cached",
    )
    assert (
        run.params["precision_plan"] == recorded and len(store.load_explanations(run.run_id)) == 4
    )

    cache(clf, FP32)  # the machine is measured again: auto now means fp32
    resumed = explain_service.run(
        ExplainRequest(resume=run.run_id), ServiceContext(store, Progress(), models)
    )
    assert resumed.run_id == run.run_id and store.get_run(run.run_id).status == "finished"
    # every explanation, the stored first part and the resumed rest, ran in the stored plan
    assert [e.diagnostics["precision"] for e in resumed.explanations] == ["bf16-weights"] * 12

    # the merged result is an uninterrupted run's with the original plan (given explicitly)
    whole = explain_service.run(req, ServiceContext(None, Progress(), models))  # auto: fp32 now
    assert {e.diagnostics["precision"] for e in whole.explanations} == {"fp32"}
    pinned = req.model_copy(update={"precision_plan": BF16.to_dict()})
    original = explain_service.run(pinned, ServiceContext(None, Progress(), models))
    got, want, today = (scores(r.explanations) for r in (resumed, original, whole))
    assert [g[:2] for g in got] == [w[:2] for w in want]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g[2], w[2], rtol=1e-6, atol=1e-8)
    # … which is not what today's cache gives: the plan, not the cache, made these numbers
    gap = max(np.abs(np.subtract(g[2], t[2])).max() for g, t in zip(got, today, strict=True))
    assert gap > 1e-4


def _examples() -> list[RationaleExample]:
    texts = ["good film .", "bad plot .", "great acting !", "boring and slow ."]
    rats = [[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 1, 0]]
    return [
        RationaleExample(f"e{i}", t, "positive", r)
        for i, (t, r) in enumerate(zip(texts, rats, strict=True))
    ]


def test_a_resumed_benchmark_keeps_the_plan_it_started_with(tiny_bert_dir, cache) -> None:
    clf = LocalModels().task(str(tiny_bert_dir))
    cache(clf, BF16)
    req = BenchmarkRequest(model="tiny", dataset="toy", methods=["occlusion", "random"],
                           metrics=["comprehensiveness", "token_f1"], chunk_size=1)  # fmt: skip
    store = open_store()
    with pytest.raises(KeyboardInterrupt):
        benchmark_examples(req, ServiceContext(store, StopAfter(2, "interrupt")), clf, _examples())
    (run,) = store.list_runs()
    assert run.status == "interrupted" and run.params["precision_plan"]["forward"] == "bf16"
    assert stored_request(run).precision_plan == run.params["precision_plan"]

    cache(clf, FP32)
    again = req.model_copy(update={"resume": run.run_id})
    res = benchmark_examples(again, ServiceContext(store), clf, _examples())
    assert res.computed == [
        "000002",
        "000003",
    ]  # the resumed part: computed now, under fp32's cache
    summary = store.get_run(run.run_id).summary
    assert summary["precision_plan"]["forward"] == "bf16"

    pinned = req.model_copy(update={"precision_plan": BF16.to_dict()})
    original = benchmark_examples(pinned, ServiceContext(None), clf, _examples())
    assert [r["value"] for r in res.result.rows] == pytest.approx(
        [r["value"] for r in original.result.rows], nan_ok=True, abs=0
    )


def test_a_worker_computes_in_the_plan_of_its_run(tiny_bert_dir, cache) -> None:
    """A Ray actor (its class, in this process): the first resolves the plan from its machine's
    cache; a later one (a replaced actor, a resumed job) gets the run's plan with its spec and
    computes in it whatever its cache says, as does one pinned by the driver."""
    from explainlm.scale.worker import ShardWorker

    spec = ExplainRequest(model=str(tiny_bert_dir), methods=["occlusion"]).spec()
    first = ShardWorker("explain", spec)
    cache(first.state, BF16)
    plan = first.precision_plan()
    assert plan is not None and plan["forward"] == "bf16"

    cache(first.state, FP32)

    def precisions(worker: ShardWorker) -> set[str]:
        records = worker.job.compute(worker.request, worker.state, TEXTS[:3])
        return {r["diagnostics"]["precision"] for r in records}

    assert precisions(ShardWorker("explain", {**spec, "precision_plan": plan})) == {"bf16-weights"}
    driven = ShardWorker("explain", spec)
    driven.pin(plan)
    assert driven.precision_plan() == plan and precisions(driven) == {"bf16-weights"}
    alone = ShardWorker("explain", spec)  # not pinned: today's cache
    assert alone.precision_plan()["forward"] == "fp32" and precisions(alone) == {"fp32"}


# ------------------------------------------------------------- runs stored before `sampling`
LONG = ["a good film with a dull plot and fine acting", "slow and long but the music is great"]
OLD_PARAMS = {"kernel_shap": {"n_samples": 40, "exact_max_features": 3}}


def old_spec(model: str) -> dict[str, Any]:
    """An explain spec as stored before the precision policy and KernelSHAP's ``sampling``."""
    return {"texts": LONG, "model": model, "methods": ["kernel_shap"], "params": OLD_PARAMS,
            "chunk_size": 1, "task": None, "truncate": True}  # fmt: skip


def test_a_run_stored_before_sampling_resumes_with_kernel_sampling(tiny_bert_dir) -> None:
    store = open_store()
    spec = old_spec(str(tiny_bert_dir))
    run_id = store.start_run("explain", model=str(tiny_bert_dir), params={**spec, "request": spec})
    store.finish_run(run_id, status="interrupted", error="interrupted")
    res = explain_service.run(ExplainRequest(resume=run_id), ServiceContext(store))
    assert {e.diagnostics["sampling"] for e in res.explanations} == {"kernel"}
    assert {e.diagnostics["precision"] for e in res.explanations} == {"fp32"}

    clf = LocalModels().task(str(tiny_bert_dir))  # KernelSHAP with kernel sampling, directly
    kernel = {"kernel_shap": {**OLD_PARAMS["kernel_shap"], "sampling": "kernel"}}
    ref = explain(LONG, clf, ["kernel_shap"], method_params=kernel, precision="fp32")
    for got, want in zip(res.explanations, ref, strict=True):
        np.testing.assert_allclose(got.word_scores, want.word_scores, rtol=1e-5, atol=1e-6)
    # today's default samples otherwise: without the pin the resumed part would differ
    today = explain(LONG, clf, ["kernel_shap"], method_params=OLD_PARAMS, precision="fp32")
    assert {e.diagnostics["sampling"] for e in today} == {"leverage"}
    assert any(
        not np.allclose(a.word_scores, b.word_scores, atol=1e-4)
        for a, b in zip(ref, today, strict=True)
    )


def test_every_resume_path_pins_the_sampling_of_older_runs(tiny_bert_dir) -> None:
    """``from_stored`` (explain), the benchmark's stored request and a Ray job's resume; a spec
    stored since (it has ``precision``) keeps today's default."""
    from types import SimpleNamespace

    spec = old_spec("m")
    kernel = {"kernel_shap": {**OLD_PARAMS["kernel_shap"], "sampling": "kernel"}}
    assert ExplainRequest.from_stored(spec).params == kernel
    assert ExplainRequest.from_stored({**spec, "precision": "auto"}).params == OLD_PARAMS
    assert ExplainRequest.from_stored({**spec, "methods": ["occlusion"], "params": {}}).params == {}
    cli_style = {**spec, "params": ["kernel_shap.n_samples=40"]}  # the CLI's strings
    assert ExplainRequest.from_stored(cli_style).params["kernel_shap"] == {
        "n_samples": 40,
        "sampling": "kernel",
    }
    rec = SimpleNamespace(command="benchmark", run_id="r", model="m",
                          params={"methods": ["kernel_shap", "random"], "params": OLD_PARAMS})  # fmt: skip
    old = stored_request(rec)
    assert (old.params, old.precision) == (kernel, "fp32")

    pytest.importorskip("ray")
    from explainlm.scale.backend import resumed_job
    from explainlm.services.dataset_jobs import BackendOptions

    store = open_store()
    backend = {"backend": BackendOptions(backend="ray").spec()}
    for stored, want in ((spec, kernel), ({**spec, "precision": "auto"}, OLD_PARAMS)):
        run_id = store.start_run("explain", params={**stored, **backend, "request": stored})
        store.finish_run(run_id, status="interrupted")
        options = BackendOptions(backend="ray", resume=run_id)
        request, _ = resumed_job(ExplainRequest(), ServiceContext(store), options)
        assert request.params == want
