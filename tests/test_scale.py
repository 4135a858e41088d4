"""The Ray backend on a real local Ray cluster (started here with 2 CPUs and a 200 MB object store;
never a mock): the merged result of a job sharded over 2 actors is exactly the local backend's,
seeded methods included; a job whose driver is killed (SIGKILL) mid-way resumes without
recomputing a finished shard and gives the same result; a row that keeps failing is recorded with
its error while the rest completes.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from servers import local_ray_cluster  # noqa: E402

from explainlm.cli.app import main  # noqa: E402
from explainlm.models.precision import PrecisionPlan  # noqa: E402
from explainlm.progress import Progress  # noqa: E402
from explainlm.services import explain as explain_service  # noqa: E402
from explainlm.services import predict as predict_service  # noqa: E402
from explainlm.services.base import ServiceContext  # noqa: E402
from explainlm.services.dataset_jobs import BackendOptions, run  # noqa: E402
from explainlm.store import open_store  # noqa: E402

WORDS = "good bad film plot acting dull great boring superb awful story music long".split()
SEEDED = ["occlusion", "kernel_shap", "random"]  # kernel_shap samples (> 4 words) with a seed
SEEDED_PARAMS = ["kernel_shap.n_samples=24", "kernel_shap.exact_max_features=4"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A local Ray cluster owned by this test process (stopped by it at the end)."""
    with local_ray_cluster(str(tmp_path_factory.mktemp("ray"))) as address:
        yield address


def corpus(path: Path, n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]
    path.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts)))
    return texts


class Recorded(Progress):
    """Remembers the stages started and the steps advanced."""

    def __init__(self) -> None:
        super().__init__()
        self.stages: list[tuple[str, float | None]] = []
        self.steps: list[float] = []

    def start(self, stage: str, total: float | None = None, **kw: Any) -> None:
        super().start(stage, total, **kw)
        self.stages.append((stage, total))

    def advance(self, n: float = 1, message: str | None = None) -> None:
        super().advance(n, message)
        self.steps.append(n)


def comparable(explanations: Any) -> list[dict[str, Any]]:
    """Everything of each explanation but its wall-clock times, in order."""
    out = []
    for e in explanations:
        d = e.to_dict()
        d.pop("seconds")
        if d.get("check"):
            d["check"] = {k: v for k, v in d["check"].items() if k != "seconds"}
        out.append(d)
    return out


def test_explain_on_two_actors_is_exactly_the_local_result(
    cluster: str, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    texts = corpus(path, 300)
    req = explain_service.ExplainRequest(
        input=str(path), model=str(tiny_bert_dir), methods=SEEDED, params=SEEDED_PARAMS
    )
    local = explain_service.run(req, ServiceContext())
    progress = Recorded()
    ctx = ServiceContext(store=open_store(), progress=progress)
    res = run(req, ctx, BackendOptions(backend="ray", address=cluster, actors=2))
    merged = res.load()
    # one progress stage on the driver over all rows, advanced shard by shard
    assert ("explain on ray", 300) in progress.stages and progress.done == 300
    assert sum(progress.steps) == 300 and 1 <= len(progress.steps) <= 5

    assert len(local.explanations) == 900
    assert comparable(merged.explanations) == comparable(local.explanations)
    assert [e.text for e in merged.explanations[::3]] == texts
    # 5 shards = the local run's 5 chunks of 64 rows, spread over both actors, one file each
    assert sorted(res.shards) == [f"{k:06d}" for k in range(5)]
    assert len({s["pid"] for s in res.shards.values()}) == 2
    assert sorted(p.name for p in Path(res.output).glob("*.parquet")) == res.files
    # the run store indexes the run and its shards
    rec = ctx.store.get_run(res.run_id)
    assert rec.status == "finished" and rec.params["backend"]["actors"] == 2
    assert rec.summary["rows"] == 300 and rec.summary["n_failed_rows"] == 0
    items = ctx.store.get_items(res.run_id, "shard")
    assert [items[k]["rows"] for k in sorted(items)] == [64, 64, 64, 64, 44]
    assert all(items[k]["status"] == "done" for k in items)
    # the result dataset is plain Parquet: one row per explanation, typed columns
    import pyarrow.parquet as pq

    table = pq.read_table(res.output).to_pandas().sort_values(["row", "seq"])
    assert len(table) == 900 and list(table["method"][:3]) == SEEDED
    assert list(table["scores"].iloc[4]) == local.explanations[4].scores


def test_predict_on_ray_and_a_row_that_keeps_failing(
    cluster: str, tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Predictions are the local ones; an over-long text (truncation off) fails its shard, which is
    retried, then computed row by row: only that row is recorded as failed, with its error."""
    path = tmp_path / "in.csv"
    texts = corpus(path, 100, seed=1)
    req = predict_service.PredictRequest(input=str(path), model=str(tiny_bert_dir))
    local = predict_service.run(req, ServiceContext())
    # through the CLI: --json prints the local document plus the job's summary
    args = ["predict", "--input", path, "--model", tiny_bert_dir, "--json"]
    code = main([str(a) for a in [*args, "--backend", "ray", "--address", cluster]])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["predictions"] == local.to_json_doc()["predictions"]
    assert doc["dataset"]["rows"] == 100 and doc["dataset"]["shards"] == 4

    texts[70] = " ".join(["long"] * 200)  # over the tiny model's 128 positions
    path.write_text("text\n" + "\n".join(texts) + "\n")
    bad = explain_service.ExplainRequest(
        input=str(path), model=str(tiny_bert_dir), methods=["occlusion"], truncate=False
    )
    res = run(bad, ServiceContext(), BackendOptions(backend="ray", address=cluster, max_retries=1))
    assert [f["row"] for f in res.failed_rows] == [70]
    assert "128" in res.failed_rows[0]["error"] or "long" in res.failed_rows[0]["error"]
    assert res.shards["000001"]["attempts"] == 2 and "shard_error" in res.shards["000001"]
    merged = res.load().explanations
    assert [e.text for e in merged] == texts[:70] + texts[71:]
    # rows of the failing shard were computed one by one: each is that text explained alone
    from explainlm.services.base import LocalModels

    clf = LocalModels("cpu").task(str(tiny_bert_dir))
    alone = explain_service.explain_texts(bad, clf, [texts[65]], Progress())
    assert comparable(alone) == comparable([merged[65]])
    # the shard without the bad row is the local run's chunk
    chunk = explain_service.explain_texts(bad, clf, texts[:64], Progress())
    assert comparable(merged[:64]) == comparable(chunk)


def _driver(args: list[str], home: Path, log: Path) -> subprocess.Popen[bytes]:
    code = "import sys; from explainlm.cli.app import main; sys.exit(main())"
    env = {**os.environ, "EXPLAINLM_HOME": str(home)}
    with open(log, "wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args], env=env, stdout=fh, stderr=subprocess.STDOUT
        )


def test_a_killed_job_resumes_without_recomputing_finished_shards(
    cluster: str, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    corpus(path, 384, seed=2)  # 6 shards
    out = tmp_path / "results"
    methods = ["lime"]
    params = ["lime.n_samples=32"]
    home = Path(os.environ["EXPLAINLM_HOME"])
    args = ["explain", "--input", str(path), "--model", str(tiny_bert_dir)]
    args += [a for m in methods for a in ("--method", m)] + ["--param", params[0]]
    args += ["--backend", "ray", "--address", cluster, "--actors", "2", "--results-dir", str(out)]
    log = tmp_path / "driver.log"
    proc = _driver(args, home, log)
    deadline = time.monotonic() + 120
    # killed once 3 shard files are written: the first ones are indexed by then, 3 are to do
    while len(list(out.glob("part-*.parquet"))) < 3 and proc.poll() is None:
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no handler runs; the next store open finds the owner dead
    proc.wait()
    assert proc.returncode == -9, log.read_text()[-2000:]

    store = open_store()
    (rec,) = store.list_runs()
    assert rec.status == "interrupted"  # marked when the store opened (run lifecycle)
    done = {k for k, v in store.get_items(rec.run_id, "shard").items() if v["status"] == "done"}
    assert 1 <= len(done) < 6, f"not killed mid-way: {sorted(done)} done"
    plan = rec.params["request"]["precision_plan"]  # the first actor's, recorded before any shard
    assert rec.params["precision_plan"] == plan
    stamps = {k: os.stat(out / f"part-{k}.parquet").st_mtime_ns for k in done}

    ctx = ServiceContext(store=store)
    resumed = run(
        explain_service.ExplainRequest(), ctx, BackendOptions(backend="ray", resume=rec.run_id)
    )
    assert set(resumed.resumed) == done and not done & set(resumed.computed)
    assert sorted(resumed.resumed + resumed.computed) == [f"{k:06d}" for k in range(6)]
    assert {k: os.stat(out / f"part-{k}.parquet").st_mtime_ns for k in done} == stamps
    assert store.get_run(rec.run_id).status == "finished"
    assert resumed.request.precision_plan == plan  # the resumed shards ran the run's plan
    forward = PrecisionPlan(**plan).mode("forward")  # lime's passes are forward passes
    assert {e.diagnostics["precision"] for e in resumed.load().explanations} == {forward}

    req = explain_service.ExplainRequest(
        input=str(path), model=str(tiny_bert_dir), methods=methods, params=params
    )
    local = explain_service.run(req, ServiceContext())
    assert comparable(resumed.load().explanations) == comparable(local.explanations)
    assert json.loads(json.dumps(resumed.summary()))["rows"] == 384


def test_benchmark_on_ray_is_the_local_benchmark(
    cluster: str, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """Workers load the dataset themselves; shards are the local run's chunks of examples, whose
    metric rows are stored as the local run stores them: the summary is the local one."""
    from explainlm.services import benchmark as benchmark_service

    rng = random.Random(3)
    lines = []
    for i in range(20):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
        flags = [int(w in ("good", "great", "bad", "dull")) for w in words]
        label = "positive" if i % 2 else "negative"
        lines.append(json.dumps({"text": " ".join(words), "label": label, "rationale": flags}))
    data = tmp_path / "bench.jsonl"
    data.write_text("\n".join(lines) + "\n")
    req = benchmark_service.BenchmarkRequest(
        model=str(tiny_bert_dir),
        dataset=str(data),
        methods=["occlusion", "random"],
        metrics=["comprehensiveness", "token_f1"],
        chunk_size=4,
        n_boot=200,
    )
    local = benchmark_service.run(req, ServiceContext(store=open_store()))
    ctx = ServiceContext(store=open_store())
    res = run(req, ctx, BackendOptions(backend="ray", address=cluster, actors=2))
    merged = res.load()
    assert merged.to_json_doc() | {"run_id": None} == local.to_json_doc() | {"run_id": None}
    assert len(res.shards) == 5 and merged.n == 20
    # the run store holds the examples' rows as a local benchmark run does (runs show/export)
    stored = benchmark_service.stored_result(ctx.store, ctx.store.get_run(res.run_id))
    assert stored.to_json_doc()["table"] == local.to_json_doc()["table"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--actors", "2"], "need --backend ray"),
        (["--results-dir", "out/ray"], "need --backend ray"),
        # --resume alone resumes a local explain run: an unknown id is a one-line error too
        (["--resume", "20261201-000000-abcdef"], "no run '20261201-000000-abcdef'"),
        (["--backend", "spark"], "backend"),
        (["--backend", "ray", "--faithfulness"], "--faithfulness is not available"),
        (["--backend", "ray", "--address", "nowhere"], "--address takes"),
    ],
)
def test_bad_backend_options_are_one_line_errors_before_any_model_loads(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", "a fine film", "--model", "no-such-model", *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err
