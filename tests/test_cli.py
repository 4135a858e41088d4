"""The ``explainlm`` command, driven in-process on the tiny models (``main(argv)`` → exit code)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from explainlm.cli.app import main
from explainlm.report import page, predictions_section
from explainlm.store import open_store

LABELS = {"negative", "positive"}
LONG_TEXT = " ".join(["word"] * 300)  # ~300 tokens: over the tiny BERT's 128 positions


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run ``explainlm ARGS`` in-process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: object) -> dict:
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1, "--json prints exactly one JSON document"
    return json.loads(out)


def assert_user_error(code: int, out: str, err: str) -> str:
    """Exit 2, one ``error:`` line on stderr, no traceback, nothing on stdout; returns the line."""
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def check_predictions(doc: dict, texts: list[str], labels: set[str]) -> None:
    assert set(doc) == {"run_id", "model", "predictions"}
    assert [p["text"] for p in doc["predictions"]] == texts
    for p in doc["predictions"]:
        assert set(p["probs"]) == labels
        assert math.isclose(sum(p["probs"].values()), 1.0, abs_tol=1e-5)
        assert all(0.0 <= v <= 1.0 for v in p["probs"].values())
        assert p["label"] == max(p["probs"], key=p["probs"].get)
        assert "warnings" not in p  # short texts are not truncated


# ------------------------------------------------------------------------------ predict
def test_predict_json_sequence_classifier(capsys, tiny_bert_dir: Path) -> None:
    texts = ["A wonderful, touching film.", "Dull and far too long."]
    doc = cli_json(capsys, "predict", *texts, "--model", tiny_bert_dir, "--json")
    check_predictions(doc, texts, LABELS)
    assert doc["model"] == str(tiny_bert_dir)


def test_predict_json_zero_shot_causal_lm(capsys, tiny_llama_dir: Path) -> None:
    doc = cli_json(capsys, "predict", "Great acting.", "--model", tiny_llama_dir, "--json")
    check_predictions(doc, ["Great acting."], LABELS)
    run = open_store().get_run(doc["run_id"])
    assert run.params["task"] == "zero_shot"
    assert run.params["labels"] == ["negative", "positive"]


def test_predict_zero_shot_custom_labels(capsys, tiny_llama_dir: Path) -> None:
    doc = cli_json(
        capsys, "predict", "Chest pain since noon.", "--model", tiny_llama_dir,
        "--labels", "urgent, routine ,later", "--template", "Note: {text}\\nTriage:", "--json",
    )  # fmt: skip
    check_predictions(doc, ["Chest pain since noon."], {"urgent", "routine", "later"})


def test_predict_input_file_with_limit(capsys, tmp_path: Path, tiny_bert_dir: Path) -> None:
    data = tmp_path / "reviews.tsv"
    rows = [f"review number {i}" for i in range(6)]
    data.write_text("id\tsentence\n" + "".join(f"{i}\t{r}\n" for i, r in enumerate(rows)))
    doc = cli_json(
        capsys, "predict", "--input", data, "--text-column", "sentence", "--limit", "3",
        "--model", tiny_bert_dir, "--json",
    )  # fmt: skip
    check_predictions(doc, rows[:3], LABELS)
    run = open_store().get_run(doc["run_id"])
    assert run.params["input"] == str(data)
    assert run.params["n_texts"] == 3
    assert run.summary["n"] == 3 and sum(run.summary["label_counts"].values()) == 3


def test_predict_run_is_recorded_and_exportable(capsys, tmp_path: Path, tiny_bert_dir) -> None:
    texts = ["good", "bad", "it was [/b] fine"]
    doc = cli_json(capsys, "predict", *texts, "--model", tiny_bert_dir, "--json")
    run_id = doc["run_id"]

    listed = cli_json(capsys, "runs", "list", "--json")["runs"]
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["command"] == "predict"
    assert listed[0]["status"] == "finished"
    assert listed[0]["model"] == str(tiny_bert_dir)
    assert cli_json(capsys, "runs", "list", "--command", "train", "--json") == {"runs": []}

    shown = cli_json(capsys, "runs", "show", run_id[:-2], "--json")  # a unique prefix
    assert shown["run"]["run_id"] == run_id
    assert [(p["text"], p["label"], p["probs"]) for p in shown["predictions"]] == [
        (p["text"], p["label"], p["probs"]) for p in doc["predictions"]
    ]

    code, out, err = cli(capsys, "runs", "show", run_id)  # human-readable, markup-safe
    assert code == 0, err
    assert run_id in out and "[/b]" in out

    target = tmp_path / "exports" / "a [bold] dir" / "run.parquet"
    code, out, err = cli(capsys, "runs", "export", run_id, "--format", "parquet", "-o", target)
    assert code == 0, err
    assert out.strip() == str(target)
    frame = pd.read_parquet(target)
    assert frame["text"].tolist() == texts
    assert frame["label"].tolist() == [p["label"] for p in doc["predictions"]]
    assert [json.loads(v) for v in frame["probs"]] == [p["probs"] for p in doc["predictions"]]


def test_runs_show_and_export_unknown_run(capsys) -> None:
    assert "no run 'nope'" in assert_user_error(*cli(capsys, "runs", "show", "nope"))
    assert "no run 'nope'" in assert_user_error(*cli(capsys, "runs", "export", "nope"))


def test_runs_export_unknown_format(capsys, tmp_path: Path) -> None:
    run_id = open_store().start_run("predict")
    line = assert_user_error(*cli(capsys, "runs", "export", run_id, "-f", "xlsx", "-o", "x.xlsx"))
    assert "unknown export format 'xlsx'" in line


def test_predict_human_output_shows_texts_verbatim(capsys, tiny_bert_dir: Path) -> None:
    code, out, err = cli(capsys, "predict", "[bold]loud[/bold] and [/b]", "-m", tiny_bert_dir)
    assert code == 0, err
    assert "[bold]loud[/bold] and [/b]" in out
    assert "positive" in out or "negative" in out


# ---------------------------------------------------------------------------- truncation
def test_long_text_is_truncated_with_a_warning(capsys, caplog, tiny_bert_dir: Path) -> None:
    with caplog.at_level(logging.WARNING):
        doc = cli_json(capsys, "predict", LONG_TEXT, "--model", tiny_bert_dir, "--json")
    (pred,) = doc["predictions"]
    assert len(pred["warnings"]) == 1
    assert "truncated from 302 to 128 tokens" in pred["warnings"][0]
    assert LONG_TEXT.startswith(pred["text"]) and len(pred["text"]) < len(LONG_TEXT)
    assert math.isclose(sum(pred["probs"].values()), 1.0, abs_tol=1e-5)
    assert any("truncated" in r.getMessage() for r in caplog.records)  # also logged
    (row,) = open_store().results(doc["run_id"])
    assert row["warnings"] == pred["warnings"]


def test_no_truncate_rejects_long_text(capsys, tiny_bert_dir: Path) -> None:
    args = ("predict", "short", LONG_TEXT, "--model", tiny_bert_dir, "--json", "--no-truncate")
    line = assert_user_error(*cli(capsys, *args))
    assert "302 tokens" in line and "limit of 128" in line
    assert open_store().list_runs() == []  # bad input is not recorded as a failed run


# ------------------------------------------------------------------------------ generator
def test_generator_task(capsys, tiny_llama_dir: Path) -> None:
    doc = cli_json(
        capsys, "predict", "Hello", "--model", tiny_llama_dir, "--task", "generator",
        "--max-new-tokens", "3", "--json",
    )  # fmt: skip
    (pred,) = doc["predictions"]
    assert pred["text"] == "Hello"
    assert isinstance(pred["label"], str)
    assert list(pred["probs"]) == [pred["label"]]
    assert 0.0 <= pred["probs"][pred["label"]] <= 1.0
    assert open_store().get_run(doc["run_id"]).params["task"] == "generator"


# --------------------------------------------------------------------------- user errors
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["predict", ""], "text 1 is empty"),
        (["predict", "fine", "   "], "text 2 is empty"),
        (["predict"], "no text given"),
        (["predict", "x", "--limit", "0"], "--limit must be at least 1"),
        (["predict", "x", "--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["predict", "x", "--model", "./no/such/dir"], "not a model directory"),
        (["predict", "x", "--model", "  "], "empty model name"),
    ],
)
def test_user_errors_before_loading_a_model(capsys, args: list[str], expected: str) -> None:
    line = assert_user_error(*cli(capsys, *args))
    assert expected in line
    assert open_store().list_runs() == []  # nothing was run, nothing recorded


def test_unknown_model_lists_builtin_names(capsys) -> None:
    line = assert_user_error(*cli(capsys, "predict", "x", "--model", "gpt-17"))
    assert "smollm2-135m" in line and "minilm-l6" in line


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--labels", "positive"], "at least two labels"),
        (["--labels", "good,bad,good"], "duplicate label(s) in --labels: good"),
        (["--labels", " , "], "comma-separated list"),
        (["--template", "no slot here"], "{text}"),
        (["--task", "sequence_classifier"], "not a sequence classifier"),
        (["--task", "summarize"], "unknown task 'summarize'"),
    ],
)
def test_bad_task_options(capsys, tiny_llama_dir: Path, extra: list[str], expected: str) -> None:
    line = assert_user_error(*cli(capsys, "predict", "x", "--model", tiny_llama_dir, *extra))
    assert expected in line


def test_label_count_must_match_sequence_classifier(capsys, tiny_bert_dir: Path) -> None:
    args = ("predict", "x", "--model", tiny_bert_dir, "--labels", "a,b,c")
    assert "label" in assert_user_error(*cli(capsys, *args))


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("bad.jsonl", '{"text": "ok"}\n{"text": "broken"\n', "line 2: invalid JSON"),
        ("bad.csv", "text,label\nok,1\ntoo,many,fields\n", "line 3: expected 2 fields"),
        ("bad.tsv", "review\nok\n", "line 2: no column 'text' (columns: review)"),
        ("bad.jsonl", '{"text": "ok"}\n\n{"text": "  "}\n', "line 3: empty or non-text value"),
    ],
)
def test_malformed_input_file(capsys, tmp_path: Path, name: str, content: str, where: str) -> None:
    data = tmp_path / name
    data.write_text(content)
    line = assert_user_error(*cli(capsys, "predict", "--input", data))
    assert f"{data}, {where}" in line


def test_missing_input_file(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "no [/b] such [bold]file.tsv"  # rich markup in a path stays verbatim
    line = assert_user_error(*cli(capsys, "predict", "--input", missing))
    assert line == f"error: file not found: {missing}"


# ---------------------------------------------------------------------------- models, help
def test_models_list_json(capsys) -> None:
    models = cli_json(capsys, "models", "list", "--json")["models"]
    names = [m["name"] for m in models]
    assert "smollm2-135m" in names and "minilm-l6" in names
    kinds = {m["name"]: m["kind"] for m in models}
    assert kinds["smollm2-135m"] == "causal_lm"
    assert kinds["minilm-l6"] == "encoder"
    assert all(m["description"] for m in models)


@pytest.mark.parametrize(
    "command",
    [["predict"], ["runs", "list"], ["runs", "show"], ["runs", "export"], ["models", "list"]],
)
def test_help_has_examples(capsys, command: list[str]) -> None:
    code, out, err = cli(capsys, *command, "--help")
    assert code == 0, err
    assert "Usage" in out and "Example" in out


@pytest.mark.parametrize("command", ["explain", "predict", "benchmark"])
def test_backend_help_names_the_ray_extra(
    capsys, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """``[ray]`` in a help text is rich markup unless escaped: the rendered help must keep it."""
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = cli(capsys, command, "--help")
    assert code == 0, err
    assert "pip install 'explainlm[ray]'" in out


def test_no_help_text_loses_brackets_to_rich_markup() -> None:
    """Every help text of every command, rendered as typer renders it (rich markup), reads as
    written: a ``[word]`` that rich would take for a style tag must be escaped (``\\[word]``)."""
    import typer.main
    from rich.text import Text

    from explainlm.cli.app import app

    def commands(cmd: Any, path: str) -> Iterator[tuple[str, Any]]:
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from commands(sub, f"{path} {name}")

    lost = []
    for path, cmd in commands(typer.main.get_command(app), "explainlm"):
        texts = [cmd.help or "", *(getattr(p, "help", None) or "" for p in cmd.params)]
        for text in texts:
            if Text.from_markup(text).plain != text.replace("\\[", "["):
                lost.append(f"{path}: {text}")
    assert not lost, "\n".join(lost)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["predict", "x", "--limit", "many"], "Invalid value for '--limit'"),
        (["predict", "x", "--no-such-option"], "No such option: --no-such-option"),
        (["no-such-command"], "No such command"),
    ],
)
def test_usage_errors_exit_2_without_traceback(capsys, args: list[str], expected: str) -> None:
    code, out, err = cli(capsys, *args)
    assert code == 2
    assert expected in err
    assert "Traceback" not in err


def test_ctrl_c_exits_130_and_marks_the_run_interrupted(
    capsys, monkeypatch: pytest.MonkeyPatch, tiny_bert_dir: Path
) -> None:
    from explainlm.store import RunStore

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "add_predictions", interrupt)
    code, out, err = cli(capsys, "predict", "x", "--model", tiny_bert_dir, "--json")
    assert code == 130
    assert out == "" and "interrupted" in err and "Traceback" not in err
    (run,) = open_store().list_runs()
    assert (run.status, run.error) == ("interrupted", "interrupted")


# --------------------------------------------------------------------------------- report
def test_html_report_escapes_user_text(tmp_path: Path) -> None:
    from explainlm.report import write_report

    preds = [
        {"text": "<script>alert(1)</script>", "label": "<b>pos</b>", "probs": {"<b>pos</b>": 1.0}},
        {"text": "<img src=x onerror=alert(1)>", "label": "neg", "probs": {"neg": 0.6, "x": 0.4}},
    ]
    html = page("<title>", [predictions_section("<model>", preds)], {"run": "<script>x</script>"})
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;pos&lt;/b&gt;" in html
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered
    assert "<b>" not in lowered and "<model>" not in lowered
    assert lowered.count("<title>") == 1  # the page's own element only
    out = write_report(tmp_path / "r" / "report.html", "t", [predictions_section("m", preds)])
    assert out.is_file() and "<script" not in out.read_text(encoding="utf-8").lower()
