"""Metrics, sanity test, benchmark (with resume) and the CLI on the tiny random models."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from explainlm.attribution import explain
from explainlm.datasets import RationaleExample
from explainlm.errors import UserError
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


def top_k(scores, fractions=(0.01, 0.05, 0.10, 0.20, 0.50)) -> list[list[int]]:
    """ERASER/ferret bins: the top ``int(q·n)`` features (ties: earlier first), empty and
    repeated sets skipped."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))
    out: list[list[int]] = []
    for q in fractions:
        s = sorted(order[: int(q * len(scores))])
        if s and (not out or s != out[-1]):
            out.append(s)
    return out


def prob(clf, text: str, label: str) -> float:
    """p(label | text) (an empty text, every word removed, is scored as the model sees it)."""
    scores = clf.scores(clf.encode([text], allow_empty=True))[0]
    return float(torch.softmax(scores, -1)[clf.label_index(label)])


def test_faithfulness_on_model(clf) -> None:
    exps = explain(TEXTS, clf, ["occlusion", "random"])
    res = evaluate(exps, ["comprehensiveness", "sufficiency", "tau_loo", "deletion_auc"], clf)
    vals = {(r["method"], r["metric"], r["example"]): r["value"] for r in res.rows}
    for i in range(2):  # occlusion scores are the leave-one-out effects themselves
        assert vals[("occlusion", "tau_loo", i)] == pytest.approx(1.0)
    for k, e in enumerate(exps):  # brute force: predict() on the reduced texts
        words, i = e.text.split(" "), k // 2
        f = prob(clf, e.text, e.label)
        sets = top_k(e.word_scores)
        comp = [
            f - prob(clf, " ".join(w for j, w in enumerate(words) if j not in s), e.label)
            for s in sets
        ]
        suff = [
            f - prob(clf, " ".join(w for j, w in enumerate(words) if j in s), e.label) for s in sets
        ]
        assert vals[(e.method, "comprehensiveness", i)] == pytest.approx(np.mean(comp), abs=1e-5)
        assert vals[(e.method, "sufficiency", i)] == pytest.approx(np.mean(suff), abs=1e-5)
        order = sorted(range(len(words)), key=lambda j: (-e.word_scores[j], j))
        curve = [
            prob(clf, " ".join(w for j, w in enumerate(words) if j not in order[:n]), e.label)
            for n in range(len(words) + 1)
        ]
        auc = np.trapezoid(curve, np.arange(len(words) + 1) / len(words))
        assert vals[(e.method, "deletion_auc", i)] == pytest.approx(auc, abs=1e-5)
    # mask replacement and token granularity: the text's tokens replaced by [MASK] in place
    tok = explain(TEXTS, clf, ["grad_x_input"], granularity="token")
    res2 = evaluate(
        tok, ["comprehensiveness"], clf, metric_params={"comprehensiveness": {"replace": "mask"}}
    )
    mask_id = clf.wrapper.tokenizer.mask_token_id
    for e, row in zip(tok, res2.rows, strict=True):
        enc = clf.encode([e.text])[0]
        positions = enc.text_token_positions
        scores = [e.token_scores[p] for p in positions]
        li = clf.label_index(e.label)
        f = float(torch.softmax(clf.scores([enc])[0], -1)[li])
        drops = []
        for s in top_k(scores):
            ids = list(enc.input_ids)
            for j in s:
                ids[positions[j]] = mask_id
            masked = replace(enc, input_ids=ids)
            drops.append(f - float(torch.softmax(clf.scores([masked])[0], -1)[li]))
        assert row["value"] == pytest.approx(np.mean(drops), abs=1e-5)


def test_stability_metrics(clf) -> None:
    from explainlm.evaluation.stability import text_edits

    exps = explain(TEXTS[:1], clf, ["occlusion"])
    e = exps[0]
    res = evaluate(
        exps,
        ["max_sensitivity_noise", "max_sensitivity_edits"],
        clf,
        metric_params={"max_sensitivity_noise": {"noise": 0.05, "samples": 2, "seed": 4}},
    )
    noise, edits = (r["value"] for r in res.rows)
    base = np.asarray(e.word_scores)

    def change(new: list[float]) -> float:
        return float(np.linalg.norm(np.asarray(new) - base) / np.linalg.norm(base))

    # by hand: noise on the text tokens' embedding rows, re-explain for the same label, restore
    weight = clf.wrapper.embedding_layer.weight
    enc = clf.encode([e.text])[0]
    rows = torch.tensor(
        sorted({t for t, sp in zip(enc.input_ids, enc.special, strict=True) if not sp})
    )
    saved = weight.data[rows].clone()
    sigma = 0.05 * float(weight.data.float().std())
    gen = torch.Generator().manual_seed(4)
    worst = 0.0
    try:
        for _ in range(2):
            weight.data[rows] = saved + torch.randn(saved.shape, generator=gen) * sigma
            again = explain([e.text], clf, ["occlusion"], target=f"prob:{e.label}", check=False)
            worst = max(worst, change(again[0].word_scores))
    finally:
        weight.data[rows] = saved
    assert noise == pytest.approx(worst, rel=1e-5) and worst > 0
    expected = max(
        change(explain([t], clf, ["occlusion"], target=f"prob:{e.label}")[0].word_scores)
        for _, t in text_edits(e.text)
    )
    assert edits == pytest.approx(expected, rel=1e-5)
    # the embedding rows are restored afterwards
    again = explain(TEXTS[:1], clf, ["occlusion"])[0]
    assert again.word_scores == pytest.approx(e.word_scores)


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
    with pytest.raises(UserError, match="random: 5 word scores for 6 words"):
        evaluate([e], ["comprehensiveness"], clf)
