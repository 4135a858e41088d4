"""Fine-tuning (`explainlm train`): tiny random BERTs on small synthetic files, plus one real run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import typer
from safetensors.torch import load_file
from typer.testing import CliRunner

from explainlm.errors import DataFormatError, UserError
from explainlm.models import SequenceClassifier, load_model
from explainlm.models.sources import META_FILE
from explainlm.store import open_store
from explainlm.training import TrainResult, evaluate_classifier, train_classifier
from explainlm.training.trainer import _sorted_values

GOOD = ["great", "wonderful", "lovely", "superb", "excellent"]
BAD = ["awful", "terrible", "boring", "dreadful", "horrible"]
THINGS = ["film", "movie", "story", "cast"]
FAST = {
    "epochs": 4,
    "batch_size": 8,
    "learning_rate": 3e-3,
    "warmup_ratio": 0.0,
    "max_length": 16,
    "progress": False,
}


def _rows(n: int, offset: int = 0) -> list[tuple[str, str]]:
    rows = []
    for i in range(offset, offset + n):
        words, label = (GOOD, "1") if i % 2 == 0 else (BAD, "0")
        rows.append((f"a {words[i // 2 % 5]} {THINGS[i % 4]}", label))
    return rows


def _write_tsv(path: Path, rows: list[tuple[str, str]], header: str = "sentence\tlabel") -> Path:
    path.write_text(header + "\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))
    return path


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    return _write_tsv(tmp_path / "train.tsv", _rows(40)), _write_tsv(
        tmp_path / "dev.tsv", _rows(12, 40)
    )


def _train(tiny: Path, train: Path, dev: Path | None, out: Path, **kw: object) -> TrainResult:
    opts: dict[str, object] = {**FAST, "text_column": "sentence", "base_model": str(tiny)}
    opts.update(kw)
    return train_classifier(train, dev, output_dir=out, log=lambda _m: None, **opts)  # type: ignore[arg-type]


def test_trained_dir_loads_and_predicts_label_names(
    tiny_bert_dir: Path, files, tmp_path: Path
) -> None:
    train, dev = files
    res = _train(tiny_bert_dir, train, dev, tmp_path / "clf", label_names=["negative", "positive"])
    assert res.labels == ["negative", "positive"] and res.label_values == ["0", "1"]
    clf = load_model(str(res.output_dir))
    assert isinstance(clf, SequenceClassifier)
    assert clf.labels == ["negative", "positive"]
    preds = clf.predict(["a superb story", "a dreadful cast"])
    assert [p.label for p in preds] == ["positive", "negative"]
    assert set(preds[0].probs) == {"negative", "positive"}
    # The separable task is learnt: dev accuracy of the saved (best) epoch, and re-evaluation agrees.
    assert res.dev_metrics is not None and res.dev_metrics["accuracy"] == 1.0
    metrics = evaluate_classifier(clf, dev, text_column="sentence")
    assert metrics["accuracy"] == 1.0 and metrics["n"] == 12
    assert metrics["report"]["positive"]["support"] == 6


def test_metadata_is_complete(tiny_bert_dir: Path, files, tmp_path: Path) -> None:
    train, dev = files
    res = _train(tiny_bert_dir, train, dev, tmp_path / "clf", epochs=2)
    meta = json.loads((res.output_dir / META_FILE).read_text())
    for key in (
        "kind",
        "labels",
        "label_values",
        "base_model",
        "train_file",
        "dev_file",
        "text_column",
        "label_column",
        "params",
        "history",
        "best_epoch",
        "dev_metrics",
        "device",
        "train_seconds",
        "created_at",
        "explainlm_version",
    ):
        assert key in meta, key
    assert meta["kind"] == "sequence_classifier"
    assert meta["labels"] == ["0", "1"] and meta["label_values"] == ["0", "1"]
    assert meta["train_file"] == str(train.resolve()) and meta["dev_file"] == str(dev.resolve())
    assert meta["params"]["learning_rate"] == FAST["learning_rate"]
    assert meta["params"]["train_rows"] == 40 and meta["params"]["dev_rows"] == 12
    assert [h["epoch"] for h in meta["history"]] == list(range(1, len(meta["history"]) + 1))
    assert {"accuracy", "macro_f1", "report", "train_loss"} <= set(meta["history"][0])
    assert meta["device"] == "cpu" and meta["train_seconds"] >= 0
    best = meta["history"][meta["best_epoch"] - 1]
    assert meta["dev_metrics"]["accuracy"] == best["accuracy"] == res.dev_metrics["accuracy"]
    config = json.loads((res.output_dir / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "0", "1": "1"}
    assert (res.output_dir / "model.safetensors").is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert res.output_dir.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's private 0700
    assert (res.output_dir / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (res.output_dir / "tokenizer.json").is_file() or (res.output_dir / "vocab.txt").is_file()
    assert res.to_dict()["output_dir"] == str(res.output_dir)


def test_same_seed_gives_identical_weights(tiny_bert_dir: Path, files, tmp_path: Path) -> None:
    train, dev = files
    runs = [
        _train(tiny_bert_dir, train, dev, tmp_path / name, epochs=1, seed=seed)
        for name, seed in [("a", 3), ("b", 3), ("c", 4)]
    ]
    a, b, c = (load_file(r.output_dir / "model.safetensors") for r in runs)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].history[0]["train_loss"] == runs[1].history[0]["train_loss"]
    assert not all(torch.equal(a[k], c[k]) for k in a)  # another seed: another data order


def test_early_stopping_keeps_best_epoch(tiny_bert_dir: Path, files, tmp_path: Path) -> None:
    train, dev = files
    # A learning rate this small never changes a prediction: dev accuracy never improves after epoch 1.
    res = _train(
        tiny_bert_dir, train, dev, tmp_path / "p1", epochs=5, patience=1, learning_rate=1e-12
    )
    assert len(res.history) == 2 and res.best_epoch == 1
    res = _train(
        tiny_bert_dir, train, dev, tmp_path / "p2", epochs=5, patience=2, learning_rate=1e-12
    )
    assert len(res.history) == 3 and res.best_epoch == 1
    meta = json.loads((res.output_dir / META_FILE).read_text())
    assert meta["epochs_run"] == 3 and meta["best_epoch"] == 1


def test_without_dev_the_last_epoch_is_saved(tiny_bert_dir: Path, files, tmp_path: Path) -> None:
    train, _ = files
    res = _train(tiny_bert_dir, train, None, tmp_path / "clf", epochs=2)
    assert res.best_epoch == 2 and res.dev_metrics is None and len(res.history) == 2
    # Training again into the same directory replaces the previous model.
    res = _train(tiny_bert_dir, train, None, tmp_path / "clf", epochs=1)
    meta = json.loads((tmp_path / "clf" / META_FILE).read_text())
    assert meta["epochs_run"] == 1 and meta["dev_file"] is None


def test_csv_and_jsonl_with_string_labels(tiny_bert_dir: Path, tmp_path: Path) -> None:
    names = {"1": "pos", "0": "neg"}
    rows = [(t, names[lab]) for t, lab in _rows(40)]
    csv = tmp_path / "train.csv"
    csv.write_text("review,sentiment\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    jsonl = tmp_path / "dev.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"review": t, "sentiment": names[lab]}) + "\n" for t, lab in _rows(12, 40)
        )
    )
    res = _train(
        tiny_bert_dir,
        csv,
        jsonl,
        tmp_path / "clf",
        text_column="review",
        label_column="sentiment",
        label_names=["negative", "positive"],
    )
    assert res.label_values == ["neg", "pos"] and res.labels == ["negative", "positive"]
    clf = load_model(str(res.output_dir))
    # The test file uses the original values; the saved label_values map them to the names.
    metrics = evaluate_classifier(clf, jsonl, text_column="review", label_column="sentiment")
    assert metrics["n"] == 12 and metrics["accuracy"] == 1.0
    # truncating as training did: same rows, and the model's own limit is restored afterwards
    before = clf.wrapper.max_length
    short = evaluate_classifier(
        clf, jsonl, text_column="review", label_column="sentiment", max_length=4
    )
    assert short["n"] == 12 and clf.wrapper.max_length == before


def test_label_values_sort_numerically() -> None:
    assert _sorted_values(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert _sorted_values(["pos", "neg", "neutral"]) == ["neg", "neutral", "pos"]


def test_bad_inputs_raise_clear_user_errors(tiny_bert_dir: Path, files, tmp_path: Path) -> None:
    train, dev = files
    out = tmp_path / "out"
    with pytest.raises(UserError, match="file not found"):
        _train(tiny_bert_dir, tmp_path / "missing.tsv", dev, out)
    with pytest.raises(DataFormatError, match=r"train\.tsv, line 2: no column 'text'"):
        _train(tiny_bert_dir, train, dev, out, text_column="text")
    bad_dev = _write_tsv(tmp_path / "bad_dev.tsv", [("a great film", "1"), ("so so", "2")])
    with pytest.raises(DataFormatError, match=r"bad_dev\.tsv, line 3: label '2' was not seen"):
        _train(tiny_bert_dir, train, bad_dev, out)
    one = _write_tsv(tmp_path / "one.tsv", [("a great film", "1"), ("a good film", "1")])
    with pytest.raises(UserError, match="only one label"):
        _train(tiny_bert_dir, one, None, out)
    empty = tmp_path / "empty.tsv"
    empty.write_text("sentence\tlabel\n")
    with pytest.raises(UserError, match="no rows found"):
        _train(tiny_bert_dir, empty, None, out)
    with pytest.raises(UserError, match="3 label names .* for 2 labels"):
        _train(tiny_bert_dir, train, dev, out, label_names=["a", "b", "c"])
    with pytest.raises(UserError, match="distinct"):
        _train(tiny_bert_dir, train, dev, out, label_names=["a", "a"])
    with pytest.raises(UserError, match="epochs must be at least 1"):
        _train(tiny_bert_dir, train, dev, out, epochs=0)
    with pytest.raises(UserError, match="learning rate must be positive"):
        _train(tiny_bert_dir, train, dev, out, learning_rate=0.0)
    with pytest.raises(UserError, match="unknown model"):
        _train(tiny_bert_dir, train, dev, out, base_model="no-such-model")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty"):
        _train(tiny_bert_dir, train, dev, busy)
    (busy / META_FILE).write_text(
        '{"kind": "causal_lm"}'
    )  # e.g. a model cache: not ours to replace
    with pytest.raises(UserError, match="not empty"):
        _train(tiny_bert_dir, train, dev, busy)
    assert (busy / "notes.txt").read_text() == "keep me" and not out.exists()


def test_evaluate_rejects_unknown_test_labels(tiny_bert_dir: Path, files, tmp_path: Path) -> None:
    train, dev = files
    res = _train(tiny_bert_dir, train, dev, tmp_path / "clf", epochs=1)
    test = _write_tsv(tmp_path / "test.tsv", [("a great film", "1"), ("meh", "7")])
    with pytest.raises(DataFormatError, match=r"test\.tsv, line 3: label '7' is not one"):
        evaluate_classifier(load_model(str(res.output_dir)), test, text_column="sentence")


def test_cli_trains_records_the_run_and_prints_json(
    tiny_bert_dir: Path, files, tmp_path: Path
) -> None:
    from explainlm.cli import train as train_cli

    app = typer.Typer()
    train_cli.register(app)

    @app.callback()
    def _root() -> None:
        """Test app."""

    train, dev = files
    out = tmp_path / "clf"
    args = [
        "train",
        str(train),
        "--dev",
        str(dev),
        "--test",
        str(dev),
        "--text-column",
        "sentence",
        "--label-names",
        "negative,positive",
        "--base-model",
        str(tiny_bert_dir),
        "--output",
        str(out),
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--lr",
        "3e-3",
        "--max-length",
        "16",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{") :])
    assert doc["labels"] == ["negative", "positive"] and doc["output_dir"] == str(out)
    assert doc["test"]["n"] == 12 and doc["test"]["accuracy"] == doc["dev"]["accuracy"]
    assert 1 <= doc["best_epoch"] <= 3 and doc["device"] == "cpu"
    run = open_store().get_run(doc["run_id"])
    assert run.command == "train" and run.status == "finished"
    assert run.params["learning_rate"] == 3e-3 and run.summary["best_epoch"] == doc["best_epoch"]
    help_text = CliRunner().invoke(app, ["train", "--help"]).output
    assert "--label-names" in help_text and "explainlm train" in help_text

    # A bad option is refused before anything runs: no run is recorded for it.
    before = len(open_store().list_runs())
    failed = CliRunner().invoke(app, [*args[:-1], "--epochs", "0"])
    assert isinstance(failed.exception, UserError) and "epochs" in str(failed.exception)
    assert len(open_store().list_runs()) == before


@pytest.mark.real
def test_real_minilm_learns_sst2(data_dir: Path, tmp_path: Path) -> None:
    """1 epoch of MiniLM on the first 2000 SST-2 training phrases; the 872-sentence test set.

    Measured: test accuracy 0.803, about 75 s on 2 CPU cores. One torch thread: on a 2-core machine
    that is busy with other work, two threads oversubscribe the cores and run ~4x slower.
    """
    sst2 = data_dir / "sst2"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = train_classifier(
            sst2 / "train.tsv",
            sst2 / "dev.tsv",
            output_dir=tmp_path / "minilm",
            text_column="sentence",
            label_names=["negative", "positive"],
            epochs=1,
            batch_size=16,
            learning_rate=1e-4,
            max_length=64,
            limit=2000,
            dev_limit=200,
            progress=False,
            log=lambda _m: None,
        )
        clf = load_model(str(res.output_dir))
        metrics = evaluate_classifier(clf, sst2 / "test.tsv", text_column="sentence")
    finally:
        torch.set_num_threads(threads)
    assert res.dev_metrics is not None and res.dev_metrics["n"] == 200
    assert metrics["n"] == 872
    assert metrics["accuracy"] >= 0.75, metrics["accuracy"]


def test_trains_on_a_dataset_named_by_split(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """``NAME:SPLIT`` reads a built-in dataset (here a synthetic ERASER folder) instead of a file."""
    root = tmp_path / "data" / "hatexplain"
    (root / "docs").mkdir(parents=True)
    lines = []
    for i, (text, lab) in enumerate(_rows(24)):
        (root / "docs" / f"p{i}").write_text(text + "\n")
        label = "toxic" if lab == "1" else "non-toxic"
        lines.append(
            json.dumps({"annotation_id": f"p{i}", "classification": label, "evidences": []})
        )
    (root / "val.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("EXPLAINLM_DATA", str(tmp_path / "data"))
    res = _train(tiny_bert_dir, "hatexplain:val", None, tmp_path / "clf")  # type: ignore[arg-type]
    assert res.labels == ["non-toxic", "toxic"]
    meta = json.loads((res.output_dir / "explainlm.json").read_text())
    assert meta["train_file"] == "hatexplain:val"
    clf = load_model(str(res.output_dir))
    assert evaluate_classifier(clf, "hatexplain:val")["n"] == 24
    with pytest.raises(UserError, match="not found"):
        _train(tiny_bert_dir, "hatexplain:nosuchsplit", None, tmp_path / "clf2")  # type: ignore[arg-type]
