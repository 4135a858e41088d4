"""The DuckDB run store: schema versions, runs, transactional results, search and export."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from explainlm.errors import UserError
from explainlm.store import RunStore, open_store
from explainlm.store.runs import default_store_path
from explainlm.store.schema import MIGRATIONS, SCHEMA_VERSION

PREDS = [
    {"text": "a wonderful film", "label": "positive", "probs": {"negative": 0.1, "positive": 0.9}},
    {
        "text": 'dull, "lifeless"\nand long',
        "label": "negative",
        "probs": {"negative": 0.75, "positive": 0.25},
        "warnings": ["truncated from 300 to 128 tokens"],
    },
]


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs.duckdb")


def _versions(path: Path) -> list[tuple]:
    with duckdb.connect(str(path)) as con:
        return con.execute(
            "SELECT version, applied_at FROM schema_version ORDER BY version"
        ).fetchall()


# ------------------------------------------------------------------------------- schema
def test_new_store_gets_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "runs.duckdb"
    store = RunStore(path)
    assert path.is_file()
    assert store.schema_version == SCHEMA_VERSION == MIGRATIONS[-1][0]
    assert [v for v, _ in _versions(path)] == [m[0] for m in MIGRATIONS]
    with duckdb.connect(str(path)) as con:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert {"runs", "predictions", "items", "schema_version"} <= tables


def test_reopening_does_not_rerun_migrations(store: RunStore) -> None:
    before = _versions(store.path)
    run = store.start_run("predict", model="m")
    again = RunStore(store.path)  # would fail on CREATE TABLE runs if migration 1 re-ran
    assert _versions(store.path) == before
    assert again.get_run(run).command == "predict"


def test_store_newer_than_code_is_refused(store: RunStore) -> None:
    with duckdb.connect(str(store.path)) as con:
        con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
    with pytest.raises(UserError, match=r"newer than this explainlm") as info:
        RunStore(store.path)
    assert str(store.path) in str(info.value)
    assert str(SCHEMA_VERSION + 1) in str(info.value)


def test_default_location_is_under_explainlm_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EXPLAINLM_HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / "runs.duckdb"
    store = open_store()
    assert store.path == tmp_path / "home" / "runs.duckdb"
    assert store.path.is_file()


# --------------------------------------------------------------------------------- runs
def test_start_and_finish_run(store: RunStore) -> None:
    run = store.start_run("predict", model="tiny", params={"n_texts": 2, "input": None})
    rec = store.get_run(run)
    assert rec.status == "running"
    assert rec.finished_at is None
    assert rec.params == {"n_texts": 2, "input": None}
    assert rec.versions["python"] and "duckdb" in rec.versions
    store.finish_run(run, summary={"n": 2})
    rec = store.get_run(run)
    assert (rec.status, rec.summary, rec.error) == ("finished", {"n": 2}, None)
    assert rec.finished_at is not None and rec.finished_at >= rec.created_at


def test_start_run_with_explicit_id(store: RunStore) -> None:
    assert store.start_run("train", run_id="my-run") == "my-run"
    assert store.get_run("my-run").command == "train"


def test_recorded_run_finishes_with_summary(store: RunStore) -> None:
    with store.recorded_run("predict", model="tiny") as run:
        store.add_predictions(run.run_id, PREDS)
        run.summary = {"n": 2}
    rec = store.get_run(run.run_id)
    assert (rec.status, rec.summary, rec.error) == ("finished", {"n": 2}, None)


def test_failed_run_keeps_results_written_before_the_error(store: RunStore) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with store.recorded_run("predict", model="tiny") as run:
            store.add_predictions(run.run_id, PREDS[:1])
            run.summary = {"done": 1}
            raise RuntimeError("boom")
    rec = store.get_run(run.run_id)
    assert rec.status == "failed"
    assert rec.error == "RuntimeError: boom"
    assert rec.summary == {"done": 1}
    assert [p["text"] for p in store.results(run.run_id)] == ["a wonderful film"]


def test_failed_write_is_rolled_back_and_earlier_writes_stay(store: RunStore) -> None:
    run = store.start_run("predict")
    store.add_predictions(run, PREDS[:1], start=1)  # idx 1
    # idx 0 would insert, idx 1 collides: the whole batch must roll back, the first write stays
    with pytest.raises(duckdb.Error):
        store.add_predictions(run, PREDS, start=0)
    rows = store.results(run)
    assert [(r["idx"], r["text"]) for r in rows] == [(1, "a wonderful film")]


def test_keyboard_interrupt_marks_run_interrupted(store: RunStore) -> None:
    with pytest.raises(KeyboardInterrupt):
        with store.recorded_run("predict") as run:
            store.put_items(run.run_id, "attr", {"0": [0.5]})
            raise KeyboardInterrupt
    rec = store.get_run(run.run_id)
    assert rec.status == "interrupted"
    assert rec.error == "interrupted"
    assert store.get_items(run.run_id, "attr") == {"0": [0.5]}


def test_user_error_is_not_recorded_as_a_failed_run(store: RunStore) -> None:
    with pytest.raises(UserError):
        with store.recorded_run("predict") as run:
            raise UserError("text 1 is empty")
    assert store.list_runs() == []  # bad input is not a run
    with pytest.raises(UserError):
        with store.recorded_run("predict") as run:
            store.add_predictions(run.run_id, PREDS[:1])
            raise UserError("text 2 is too long")
    rec = store.get_run(run.run_id)  # results were stored first: they are kept
    assert (rec.status, rec.error) == ("failed", "text 2 is too long")
    assert len(store.results(run.run_id)) == 1


def test_reopen_run_by_prefix(store: RunStore) -> None:
    store.start_run("eval", run_id="resume-me-123")
    store.finish_run("resume-me-123", status="interrupted", error="interrupted")
    rec = store.reopen_run("resume-me")
    assert rec.run_id == "resume-me-123"
    now = store.get_run("resume-me-123")
    assert (now.status, now.error) == ("running", None)


def test_list_runs_newest_first_with_filters(store: RunStore) -> None:
    ids = [
        store.start_run("predict", model="smollm2-135m", run_id="r1", params={"input": "a.tsv"}),
        store.start_run("train", model="minilm-l6", run_id="r2", params={"epochs": 3}),
        store.start_run("predict", model="tiny-bert", run_id="r3", params={"input": "sst2.tsv"}),
    ]
    assert [r.run_id for r in store.list_runs()] == ids[::-1]
    assert [r.run_id for r in store.list_runs(limit=2)] == ["r3", "r2"]
    assert [r.run_id for r in store.list_runs(command="predict")] == ["r3", "r1"]
    assert [r.run_id for r in store.list_runs(command="nothing")] == []
    assert [r.run_id for r in store.list_runs(search="MINILM")] == ["r2"]  # model, any case
    assert [r.run_id for r in store.list_runs(search="sst2")] == ["r3"]  # params
    assert [r.run_id for r in store.list_runs(search="r1")] == ["r1"]  # run id
    assert [r.run_id for r in store.list_runs(command="train", search="tsv")] == []


def test_get_run_by_unique_prefix(store: RunStore) -> None:
    store.start_run("predict", run_id="20260101-aaa")
    store.start_run("predict", run_id="20260101-abb")
    store.start_run("predict", run_id="a_c")
    assert store.get_run("20260101-aa").run_id == "20260101-aaa"
    assert store.get_run("20260101-abb").run_id == "20260101-abb"
    with pytest.raises(UserError, match="ambiguous") as info:
        store.get_run("20260101-a")
    assert "20260101-aaa" in str(info.value) and "20260101-abb" in str(info.value)
    # "_" and "%" are not wildcards in a prefix
    with pytest.raises(UserError, match="no run"):
        store.get_run("a%")
    assert store.get_run("a_").run_id == "a_c"


def test_get_unknown_run(store: RunStore) -> None:
    with pytest.raises(UserError, match=r"no run 'nope'") as info:
        store.get_run("nope")
    assert str(store.path) in str(info.value)


# ------------------------------------------------------------------------------ results
def test_predictions_round_trip(store: RunStore) -> None:
    run = store.start_run("predict")
    store.add_predictions(run, PREDS[:1])
    store.add_predictions(run, PREDS[1:], start=1)
    rows = store.results(run)
    assert [r["idx"] for r in rows] == [0, 1]
    assert [r["text"] for r in rows] == [p["text"] for p in PREDS]
    assert rows[1]["probs"] == {"negative": 0.75, "positive": 0.25}  # JSON decoded
    assert rows[0]["warnings"] == [] and rows[1]["warnings"] == PREDS[1]["warnings"]
    assert store.result_tables(run).keys() == {"predictions"}
    with pytest.raises(UserError, match="unknown result table"):
        store.results(run, "runs; DROP TABLE runs")


def test_results_are_per_run(store: RunStore) -> None:
    a, b = store.start_run("predict"), store.start_run("predict", run_id="other")
    store.add_predictions(a, PREDS)
    assert store.results(b) == []
    assert store.result_tables(b) == {}


def test_put_items_upserts_for_resumable_work(store: RunStore) -> None:
    run = store.start_run("eval")
    store.put_items(run, "attr", {"0": {"score": 1.0}, "1": {"score": 2.0}})
    store.put_items(run, "attr", {"1": {"score": 2.5}, "2": {"score": 3.0}})  # resume, redo item 1
    store.put_items(run, "metric", {"0": [1, 2]})
    assert store.get_items(run, "attr") == {
        "0": {"score": 1.0},
        "1": {"score": 2.5},
        "2": {"score": 3.0},
    }
    assert store.get_items(run, "metric") == {"0": [1, 2]}
    assert store.get_items(run, "other") == {}
    assert len(store.results(run, "items")) == 4


# ------------------------------------------------------------------------------- export
def _run_with_predictions(store: RunStore) -> str:
    with store.recorded_run("predict", model="tiny", params={"n_texts": 2}) as run:
        store.add_predictions(run.run_id, PREDS)
        run.summary = {"n": 2}
    return run.run_id


def test_export_json(store: RunStore, tmp_path: Path) -> None:
    run = _run_with_predictions(store)
    written = store.export(run, "json", tmp_path / "out" / "run.json")
    assert written == [tmp_path / "out" / "run.json"]
    doc = json.loads(written[0].read_text())
    assert doc["run"]["run_id"] == run and doc["run"]["status"] == "finished"
    assert doc["run"]["summary"] == {"n": 2}
    frame = pd.DataFrame(doc["predictions"])
    assert frame["text"].tolist() == [p["text"] for p in PREDS]
    assert frame["probs"].tolist() == [p["probs"] for p in PREDS]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_table_formats(store: RunStore, tmp_path: Path, fmt: str) -> None:
    run = _run_with_predictions(store)
    target = tmp_path / f"run.{fmt}"
    assert store.export(run[:12], fmt, target) == [target]  # a unique prefix works too
    frame = pd.read_parquet(target) if fmt == "parquet" else pd.read_csv(target)
    assert len(frame) == 2
    assert frame["run_id"].tolist() == [run, run]
    assert frame["idx"].tolist() == [0, 1]
    assert frame["text"].tolist() == [p["text"] for p in PREDS]  # quotes and newlines survive
    assert frame["label"].tolist() == ["positive", "negative"]
    assert [json.loads(v) for v in frame["probs"]] == [p["probs"] for p in PREDS]
    assert [json.loads(v) for v in frame["warnings"]] == [[], PREDS[1]["warnings"]]


def test_export_one_file_per_result_table(store: RunStore, tmp_path: Path) -> None:
    run = _run_with_predictions(store)
    store.put_items(run, "attr", {"k": {"v": [1, 2]}})
    written = store.export(run, "parquet", tmp_path / "run.parquet")
    assert written == [tmp_path / "run.predictions.parquet", tmp_path / "run.items.parquet"]
    items = pd.read_parquet(written[1])
    assert items["key"].tolist() == ["k"]
    assert json.loads(items["payload"][0]) == {"v": [1, 2]}


def test_export_run_without_results_writes_the_record(store: RunStore, tmp_path: Path) -> None:
    run = store.start_run("train", model="minilm-l6", params={"epochs": 1})
    store.export(run, "csv", tmp_path / "run.csv")
    frame = pd.read_csv(tmp_path / "run.csv")
    assert frame["run_id"].tolist() == [run]
    assert frame["status"].tolist() == ["running"]
    assert json.loads(frame["params"][0]) == {"epochs": 1}


def test_export_unknown_format(store: RunStore, tmp_path: Path) -> None:
    run = _run_with_predictions(store)
    with pytest.raises(UserError, match=r"unknown export format 'xlsx'.*json, parquet, csv"):
        store.export(run, "xlsx", tmp_path / "run.xlsx")
    assert not (tmp_path / "run.xlsx").exists()


def test_export_unknown_run(store: RunStore, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no run"):
        store.export("missing", "json", tmp_path / "x.json")


# --------------------------------------------------------------------------- concurrency
def test_two_store_objects_on_one_file(store: RunStore) -> None:
    other = RunStore(store.path)
    run = store.start_run("predict", model="a")
    other.add_predictions(run, PREDS[:1])
    store.add_predictions(run, PREDS[1:], start=1)
    other.finish_run(run, summary={"n": 2})
    assert store.get_run(run).status == "finished"
    assert [r["idx"] for r in other.results(run)] == [0, 1]
    # no connection is held between operations: a plain duckdb connection can open the file
    with duckdb.connect(str(store.path)) as con:
        assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == 2
