"""``generate`` and the audits on a real local Ray cluster (2 CPUs, tiny models; never a mock):
the merged result of a job sharded over 2 actors is exactly the local backend's — generated tokens,
every attribution, the audits' statistics — and the run store holds what the local run stores; an
interrupted generate job resumes without recomputing a finished shard and gives the same result.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from servers import local_ray_cluster  # noqa: E402

from explainlm.cli.app import main  # noqa: E402
from explainlm.progress import Cancelled, Progress  # noqa: E402
from explainlm.services import audit as audit_service  # noqa: E402
from explainlm.services import generate as generate_service  # noqa: E402
from explainlm.services.base import ServiceContext  # noqa: E402
from explainlm.services.dataset_jobs import BackendOptions, run  # noqa: E402
from explainlm.store import open_store  # noqa: E402

WORDS = "the a film plot was good bad dull great long story music".split()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A local Ray cluster owned by this test module (stopped at its end)."""
    with local_ray_cluster(str(tmp_path_factory.mktemp("ray"))) as address:
        yield address


def prompts_file(path: Path, n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    prompts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))) for _ in range(n)]
    path.write_text(
        "".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(prompts))
    )
    return prompts


def without_times(doc: dict[str, Any]) -> dict[str, Any]:
    """A generate document without its run id and wall-clock seconds (checks' included)."""
    out = {k: v for k, v in doc.items() if k != "run_id"}
    out["attributions"] = [
        {**a, "check": a["check"] and {k: v for k, v in a["check"].items() if k != "seconds"}}
        for a in doc["attributions"]
    ]
    return out


def stored(run_id: str, kind: str) -> dict[str, Any]:
    items = open_store().get_items(run_id, kind)
    drop = ("seconds", "check")
    return {k: {f: x for f, x in v.items() if f not in drop} for k, v in items.items()}


def test_generate_on_two_actors_is_exactly_the_local_result(
    cluster: str, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    """Seeded sampling and seeded methods included: shards are the local run's chunks of prompts."""
    path = tmp_path / "prompts.jsonl"
    prompts = prompts_file(path, 14)
    req = generate_service.GenerateRequest(
        input=str(path), text_column="prompt", model=str(tiny_llama_dir), max_new_tokens=3,
        methods=["occlusion", "kernel_shap", "random"], params=["kernel_shap.n_samples=24"],
        sample=True, seed=5, chunk_size=4,
    )  # fmt: skip
    local = generate_service.run(req, ServiceContext(store=open_store()))
    assert local.prompts == prompts and len(local.attributions) == 42
    ctx = ServiceContext(store=open_store())
    res = run(req, ctx, BackendOptions(backend="ray", address=cluster, actors=2))
    merged = res.load()
    assert without_times(merged.to_json_doc()) == without_times(local.to_json_doc())
    assert [a.continuation for a in merged.attributions] == [
        a.continuation for a in local.attributions
    ]
    # 4 shards = the local run's chunks of 4 prompts, over both actors
    assert [res.shards[k]["rows"] for k in sorted(res.shards)] == [4, 4, 4, 2]
    assert len({s["pid"] for s in res.shards.values()}) == 2
    # the run store holds every attribution as the local run stores it (runs show, export)
    assert stored(res.run_id, "generation") == stored(local.run_id, "generation")
    assert len(stored(res.run_id, "generation")) == 42


def test_generate_needs_a_file_on_ray(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "The capital of France is", "--backend", "ray", "-m", "nope"])
    _, err = capsys.readouterr()
    assert code == 2 and "--backend ray generates over --input FILE" in err


def test_an_interrupted_generate_job_resumes_with_the_same_result(
    cluster: str, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "prompts.jsonl"
    prompts_file(path, 12, seed=1)
    req = generate_service.GenerateRequest(
        input=str(path), text_column="prompt", model=str(tiny_llama_dir), max_new_tokens=2,
        methods=["occlusion"], chunk_size=2,
    )  # fmt: skip
    out = tmp_path / "results"
    store = open_store()

    class StopAfter(Progress):  # the user pressing Ctrl-C once 4 prompts are done
        def advance(self, n: float = 1, message: str | None = None) -> None:
            super().advance(n, message)
            if self.done >= 4:
                self.cancel()

    opts = BackendOptions(backend="ray", address=cluster, actors=1, output=str(out))
    with pytest.raises(Cancelled):
        run(req, ServiceContext(store=store, progress=StopAfter()), opts)
    (rec,) = store.list_runs()
    assert rec.status != "finished"
    done = {k for k, v in store.get_items(rec.run_id, "shard").items() if v["status"] == "done"}
    assert 2 <= len(done) < 6, f"not interrupted mid-way: {sorted(done)} done"
    stamps = {k: os.stat(out / f"part-{k}.parquet").st_mtime_ns for k in done}

    again = BackendOptions(backend="ray", address=cluster, resume=rec.run_id)
    resumed = run(req, ServiceContext(store=store), again)  # the run's stored request is used
    assert set(resumed.resumed) == done and not done & set(resumed.computed)
    assert sorted(resumed.resumed + resumed.computed) == [f"{k:06d}" for k in range(6)]
    assert {k: os.stat(out / f"part-{k}.parquet").st_mtime_ns for k in done} == stamps
    assert store.get_run(rec.run_id).status == "finished"
    local = generate_service.run(req, ServiceContext())
    assert without_times(resumed.load().to_json_doc()) == without_times(local.to_json_doc())


def counterfactual_texts(path: Path) -> None:
    people = ("He", "She", "My father", "My aunt", "My son", "My daughter")
    rows = [f"{w} said the {x} was {y}." for w in people for x in ("film", "play", "book", "song")
            for y in ("good", "dull", "long", "great")]  # fmt: skip
    path.write_text("text\n" + "\n".join(rows) + "\nThe sky is blue.\n")


def test_counterfactual_audit_on_ray_is_the_local_audit(
    cluster: str, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """Two stages: 96 pairs scored in the local run's chunks of 64, then the identity attribution
    (one explain() call over its sample, as the audit defines it) — then the statistics (bootstrap
    CIs, Wilcoxon and permutation tests) on the driver from the merged items."""
    data = tmp_path / "texts.csv"
    counterfactual_texts(data)
    req = audit_service.CounterfactualAuditRequest(
        model=str(tiny_bert_dir), data=str(data), attribution_limit=12, n_boot=200, n_perm=200,
        html=str(tmp_path / "cf.html"),
    )  # fmt: skip
    local = audit_service.run(req, ServiceContext(store=open_store()))
    assert local.report["n_pairs"] == 96 and local.report["attribution"]["n"] == 12
    ctx = ServiceContext(store=open_store())
    res = run(req, ctx, BackendOptions(backend="ray", address=cluster, actors=2))
    merged = res.load()
    assert merged.to_json_doc() | {"run_id": None} == local.to_json_doc() | {"run_id": None}
    assert [res.shards[k]["rows"] for k in sorted(res.shards)] == [64, 32, 12]
    # the store: the items as the local run caches them, the report, the conclusions
    assert stored(res.run_id, "audit") == stored(local.run_id, "audit")
    rec = ctx.store.get_run(res.run_id)
    assert rec.status == "finished" and rec.summary["conclusions"] == local.report["conclusions"]
    assert ctx.store.get_items(res.run_id, "audit-report")["report"] == merged.report


def test_lm_bias_audit_on_ray_through_the_cli(
    cluster: str,
    tiny_llama_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pairs file named relative to this directory: the actors (whose working directory is the
    cluster's) read it by the absolute path the request's spec carries."""
    monkeypatch.chdir(tmp_path)
    pairs = Path("pairs.csv")
    pairs.write_text("sent_more,sent_less,bias_type\n" + "".join(
        f"The {o} said {a} was late {i}.,The {o} said {b} was late {i}.,{t}\n"
        for i in range(40) for o, a, b, t in [("nurse", "she", "he", "gender"),
                                              ("banker", "he", "she", "profession")]))  # fmt: skip
    args = ["audit", "lm-bias", "pairs", "--pairs", str(pairs), "-m", str(tiny_llama_dir), "--json",
            "--n-boot", "200"]  # fmt: skip
    assert main(args) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*args, "--backend", "ray", "--address", cluster]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["dataset"]["rows"] == 80 and doc["dataset"]["shards"] == 2
    assert doc["dataset"]["conclusions"] == local["conclusions"]
    drop = ("run_id", "dataset")
    assert {k: v for k, v in doc.items() if k not in drop} == {
        k: v for k, v in local.items() if k not in drop
    }
    # given predictions: no model work to shard, a one-line error before anything starts
    code = main(["audit", "fairness", str(pairs), "--group", "bias_type", "--prediction-column",
                 "sent_more", "--backend", "ray"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2 and "no model work to distribute" in err and len(err.splitlines()) == 1
