"""``explainlm global …`` in-process on the tiny BERT (``main(argv)`` → exit code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explainlm.cli.app import main
from explainlm.store import open_store

TEXTS = [
    "a good , fun film",
    "dull and slow",
    "the plot is great",
    "bad and dull",
    "not so good",
] * 4


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def table(tmp_path: Path) -> Path:
    p = tmp_path / "d.tsv"
    rows = ["text\tlabel"] + [
        f"{t}\t{'positive' if i % 2 else 'negative'}" for i, t in enumerate(TEXTS)
    ]
    p.write_text("\n".join(rows) + "\n")
    return p


def test_importance_json_and_outputs(
    capsys: pytest.CaptureFixture[str], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    code, out, err = cli(
        capsys,
        "global",
        "importance",
        "-m",
        tiny_bert_dir,
        "-d",
        table(tmp_path),
        "--min-count",
        2,
        "--n-boot",
        50,
        "--check-faithfulness",
        0,
        "--json",
        "-o",
        tmp_path / "i.parquet",
        "-o",
        tmp_path / "i.svg",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert (
        doc["method"] == "occlusion"
        and doc["table"]
        and set(doc["classes"]) <= {"negative", "positive"}
    )
    assert (tmp_path / "i.parquet").exists() and (tmp_path / "i.svg").exists()
    run = open_store().get_run(doc["run_id"])
    assert (
        run.command == "global-importance"
        and run.status == "finished"
        and run.params["source"] == "cli"
    )


def test_surrogate_sensitivity_and_layers(
    capsys: pytest.CaptureFixture[str], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    data = table(tmp_path)
    # a black box given as module:function (the toy linear model of the service tests)
    code, out, err = cli(
        capsys,
        "global",
        "surrogate",
        "-m",
        "test_global_service:toy_proba",
        "--labels",
        "negative,positive",
        "-d",
        data,
        "--min-df",
        1,
        "--n-boot",
        50,
        "--max-depth",
        3,
    )
    assert code == 0, err
    assert "predicts what the model predicts" in out and "present" in out
    code, out, err = cli(capsys, "global", "surrogate", "-m", tiny_bert_dir, "-d", data)
    assert code == 2 and "nothing to imitate" in err  # the tiny random model answers one label
    code, out, err = cli(
        capsys,
        "global",
        "sensitivity",
        "-m",
        tiny_bert_dir,
        "-d",
        data,
        "--n-random",
        2,
        "--grid",
        "0,0.5,1",
        "--n-boot",
        50,
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["grid"] == [0, 0.5, 1] and "per_text" not in doc and doc["reading"]
    code, out, err = cli(
        capsys,
        "global",
        "layers",
        "a fine film",
        "-m",
        tiny_bert_dir,
        "--method",
        "integrated_gradients",
        "--steps",
        4,
        "-o",
        tmp_path / "l.html",
    )
    assert code == 0, err
    assert "layers.1.resid_post" in out and (tmp_path / "l.html").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["importance", "a", "--min-count", "0"], "min_count"),
        (["importance", "a", "-d", "sst2"], "either a dataset or texts"),
        (["surrogate", "-d", "x.tsv", "--kinds", "forest"], "kinds"),
        (["sensitivity", "a", "--grid", "0,x"], "--grid takes numbers"),
        (["importance", "a", "--param", "steps"], "KEY=VALUE"),
        (["layers", "a", "--method", "lrp"], "method"),
        (["importance", "a", "-o", "out.docx"], "output"),
    ],
)
def test_bad_options_fail_before_any_model_loads(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "global", *args, "-m", "no-such-model-anywhere")
    assert code == 2 and out == "" and message in err and "Traceback" not in err
    assert "no-such-model" not in err  # the options were refused first
