"""Metrics, sanity test, benchmark (with resume) and the CLI on the tiny random models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from explainlm.attribution import explain
from explainlm.datasets import RationaleExample
from explainlm.evaluation import evaluate, randomization_test
from explainlm.models import make_task
from explainlm.progress import Progress
from explainlm.services.base import ServiceContext
from explainlm.services.benchmark import BenchmarkRequest, benchmark_examples
from explainlm.store import open_store

TEXTS = ["a wonderful , touching film .", "dull and boring , a waste of time ."]


@pytest.fixture(scope="module")
def clf(tiny_bert):
    return make_task(tiny_bert)


def test_faithfulness_on_model(clf) -> None:
    exps = explain(TEXTS, clf, ["occlusion", "random"])
    res = evaluate(exps, ["comprehensiveness", "sufficiency", "tau_loo", "deletion_auc"], clf)
    vals = {(r["method"], r["metric"], r["example"]): r["value"] for r in res.rows}
    for i in range(2):  # occlusion scores are the leave-one-out effects themselves
        assert vals[("occlusion", "tau_loo", i)] == pytest.approx(1.0)
    assert all(np.isfinite(v) for v in vals.values())
    # mask replacement and token granularity go through the same engine path
    tok = explain(TEXTS, clf, ["grad_x_input"], granularity="token")
    res2 = evaluate(
        tok, ["comprehensiveness"], clf, metric_params={"comprehensiveness": {"replace": "mask"}}
    )
    assert all(np.isfinite(r["value"]) for r in res2.rows)


def test_stability_metrics(clf) -> None:
    exps = explain(TEXTS[:1], clf, ["occlusion"])
    res = evaluate(
        exps,
        ["max_sensitivity_noise", "max_sensitivity_edits"],
        clf,
        metric_params={"max_sensitivity_noise": {"noise": 0.0, "samples": 2}},
    )
    noise, edits = (r["value"] for r in res.rows)
    assert noise == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(edits) and edits >= 0
    # the embedding rows are restored afterwards
    again = explain(TEXTS[:1], clf, ["occlusion"])[0]
    assert again.word_scores == pytest.approx(exps[0].word_scores)


def test_randomization_test(clf) -> None:
    before = clf.predict(TEXTS)[0].probs
    rows = randomization_test(clf, TEXTS, "grad_x_input")
    assert [r["layer"] for r in rows][:2] == ["original", "head"]
    assert rows[-1]["layer"] == "embeddings" and len(rows) == 1 + 1 + 2 + 1
    assert rows[-1]["spearman"] < 0.9
    assert clf.predict(TEXTS)[0].probs == pytest.approx(before)  # a deep copy was randomised


def test_parameter_randomization_metric(clf) -> None:
    before = clf.predict(TEXTS)[0].probs
    exps = explain(TEXTS, clf, ["grad_x_input", "random"])
    res = evaluate(exps, ["parameter_randomization"], clf)
    vals = {(r["method"], r["example"]): r["value"] for r in res.rows}
    # random scores ignore the model: identical after randomisation, so the sanity check fails
    assert vals[("random", 0)] == pytest.approx(1.0) and vals[("random", 1)] == pytest.approx(1.0)
    assert np.mean([vals[("grad_x_input", i)] for i in range(2)]) < 0.9
    assert clf.predict(TEXTS)[0].probs == pytest.approx(before)  # the copy was randomised
    # the metric equals the last stage of the cascading test (same seed, same stages)
    rows = randomization_test(clf, TEXTS, "grad_x_input")
    assert np.mean([vals[("grad_x_input", i)] for i in range(2)]) == pytest.approx(
        rows[-1]["spearman"]
    )
    with pytest.raises(Exception, match="stages"):
        evaluate(
            exps,
            ["parameter_randomization"],
            clf,
            metric_params={"parameter_randomization": {"stages": 0}},
        )


def _examples(n: int = 4) -> list[RationaleExample]:
    texts = ["good film .", "bad plot .", "great acting !", "boring and slow ."][:n]
    rats = [[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 1, 0]]
    return [
        RationaleExample(f"e{i}", t, "positive", r)
        for i, (t, r) in enumerate(zip(texts, rats, strict=True))
    ]


class InterruptAt(Progress):
    """Counts the examples done; Ctrl-C once ``stop`` of them are (None: never)."""

    def __init__(self, stop: int | None = None) -> None:
        super().__init__()
        self.stop, self.steps = stop, []

    def advance(self, n: float = 1, message: str | None = None) -> None:
        super().advance(n, message)
        self.steps.append(n)
        if self.stop is not None and self.done >= self.stop:
            raise KeyboardInterrupt


def test_benchmark_resume_skips_finished(clf) -> None:
    store = open_store()
    req = BenchmarkRequest(
        model="tiny",
        dataset="toy",
        methods=["occlusion", "random"],
        metrics=["comprehensiveness", "token_f1"],
        chunk_size=1,
    )
    with pytest.raises(KeyboardInterrupt):
        benchmark_examples(req, ServiceContext(store, InterruptAt(2)), clf, _examples())
    run = store.list_runs(command="benchmark")[0]
    assert run.status == "interrupted"
    assert sorted(store.get_items(run.run_id, "benchmark")) == ["000000", "000001"]
    later = InterruptAt()
    resumed = req.model_copy(update={"resume": run.run_id})
    res = benchmark_examples(resumed, ServiceContext(store, later), clf, _examples())
    assert later.steps == [2, 1, 1]  # the two stored examples, then one per chunk
    assert res.computed == ["000002", "000003"] and res.run_id == run.run_id
    assert store.get_run(run.run_id).status == "finished" and res.n == 4
    table = {(r["method"], r["metric"]) for r in res.table}
    assert table == {
        (m, x) for m in ("occlusion", "random") for x in ("comprehensiveness", "token_f1")
    }
    assert {(t["a"], t["b"]) for t in res.tests} == {("occlusion", "random")}
    # the resumed result equals an uninterrupted run of the same job
    whole = benchmark_examples(req, ServiceContext(store), clf, _examples())
    assert [r["value"] for r in whole.result.rows] == pytest.approx(
        [r["value"] for r in res.result.rows], nan_ok=True
    )


def test_benchmark_cli_json_and_outputs(tiny_bert_dir, tmp_path) -> None:
    from explainlm.cli import benchmark

    app = typer.Typer()
    benchmark.register(app)
    app.command("noop")(lambda: None)  # a multi-command app, like the real one
    data = tmp_path / "toy.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(
                {
                    "text": e.text,
                    "label": e.label,
                    "rationale": " ".join(["1"] + ["0"] * (len(e.text.split()) - 1)),
                }
            )
            for e in _examples()
        )
    )
    out = tmp_path / "out"
    args = [
        "benchmark",
        "--model",
        str(tiny_bert_dir),
        "--dataset",
        str(data),
        "--methods",
        "occlusion,random",
        "--metrics",
        "comprehensiveness,token_f1,deletion_auc",
        "--json",
        "--output",
        str(out),
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert list(doc) == ["run_id", "model", "dataset", "n", "table", "tests"]
    assert doc["n"] == 4 and len(doc["table"]) == 6
    assert set(doc["table"][0]) == {"method", "metric", "mean", "ci_low", "ci_high"}
    assert set(doc["tests"][0]) == {"metric", "a", "b", "p_value"}
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    for f in ("results.md", "table.csv", "tests.csv", "rows.parquet"):
        assert (out / f).is_file()
    r2 = CliRunner().invoke(
        app, ["benchmark", "--model", str(tiny_bert_dir), "--dataset", "nope-set"]
    )
    assert r2.exit_code != 0 and "unknown dataset" in str(r2.exception)


def test_benchmark_reports_annotator_groups(clf, tmp_path) -> None:
    from dataclasses import replace

    base = _examples()[:2]
    examples = [replace(e, group=g) for g in ("young", "old") for e in base]
    examples[-1] = replace(examples[-1], rationale=[0, 1, 0])  # the groups disagree on one word
    req = BenchmarkRequest(
        model="tiny",
        dataset="toy",
        methods=["occlusion", "random"],
        metrics=["token_f1"],
        output=str(tmp_path / "out"),
    )
    res = benchmark_examples(req, ServiceContext(open_store()), clf, examples)
    assert {(r["group"], r["method"]) for r in res.by_group} == {
        (g, m) for g in ("young", "old") for m in ("occlusion", "random")
    }
    young = next(r for r in res.by_group if r["group"] == "young" and r["method"] == "random")
    rows = [
        r["value"] for r in res.result.rows if r["group"] == "young" and r["method"] == "random"
    ]
    assert young["mean"] == pytest.approx(np.mean(rows))
    doc = res.to_json_doc()
    assert len(doc["by_group"]) == 4
    md = (tmp_path / "out" / "results.md").read_text()
    assert "## Per annotator group" in md and "| young | occlusion |" in md
    assert "Per annotator group" in (tmp_path / "out" / "report.html").read_text()


def test_evaluate_requires_matching_units(clf) -> None:
    e = explain(TEXTS[:1], clf, ["random"])[0]
    e.word_scores = e.word_scores[:-1]
    e.words = e.words[:-1]
    with pytest.raises(Exception, match="word scores"):
        evaluate([e], ["comprehensiveness"], clf)
    assert math.isfinite(torch.tensor(1.0).item())
