"""A store that survives damage, the run lifecycle (owner, stale runs, one resume at a time) and
backups before migrations.

The damaged stores are made the ways files get damaged: truncated, zero bytes, overwritten with
garbage, replaced by a folder, a table lost. Every command must still work, or say what to do in
one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from explainlm.cli.app import main
from explainlm.store import RunBusy, RunStore, StoreDamaged, open_store
from explainlm.store.health import damaged_copies
from explainlm.store.runs import default_store_path
from explainlm.store.schema import MIGRATIONS, SCHEMA_VERSION


def filled_store(path: Path, n: int = 3) -> list[str]:
    store = RunStore(path)
    ids = []
    for i in range(n):
        run = store.start_run("predict", model="m", params={"texts": [f"t{i}"]})
        store.add_predictions(run, [{"text": f"t{i}", "label": "a", "probs": {"a": 1.0}}])
        store.finish_run(run)
        ids.append(run)
    return ids


def truncate(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(8192)


def zero(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(50_000))


def folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "something").write_text("x")


def lost_table(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE explanations")


DAMAGE = {
    "truncated": truncate,
    "zero-byte": zero,
    "garbage": garbage,
    "folder": folder,
    "lost-table": lost_table,
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_every_command_works_on_a_damaged_store(
    kind: str, capsys, caplog, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    path = default_store_path()
    ids = filled_store(path)
    DAMAGE[kind](path)
    code = main(["predict", "good film", "--model", str(tiny_bert_dir), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert not out.err.strip()  # the one line is a logged warning (the CLI prints it)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "explainlm.store"]
    assert "\n" not in warning and "damaged" in warning and "runs doctor" in warning
    run_id = json.loads(out.out)["run_id"]
    assert [c.name for c in damaged_copies(path)] and path.is_file()
    for args in (["runs", "list", "--json"], ["runs", "show", run_id], ["runs", "doctor"]):
        assert main(args) == 0, capsys.readouterr().err
    doc = capsys.readouterr().out
    listed = {r.run_id for r in open_store().list_runs()}
    if kind == "lost-table":  # the rest of the file was readable: its runs are back
        assert "salvaged" in doc and set(ids) | {run_id} == listed
    else:
        assert run_id in listed
    assert damaged_copies(path) == []  # salvaged copies are renamed, not salvaged again
    code = main(["explain", "fine", "--model", str(tiny_bert_dir), "--method", "occlusion"])
    assert code == 0, capsys.readouterr().err


def test_the_cli_prints_the_warning_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "runs.duckdb").write_bytes(b"")
    env = {**os.environ, "EXPLAINLM_HOME": str(home)}
    code = "import sys; from explainlm.cli.app import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "runs", "list", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"runs": []}
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("WARNING: the run store") and "runs doctor" in line


def test_damage_met_later_is_one_line(capsys, tmp_path: Path) -> None:
    """A store damaged while a command runs (after it was opened) gives one line to act on."""
    store = open_store()
    filled_store(store.path)
    garbage(store.path)
    with pytest.raises(StoreDamaged, match="runs doctor"):
        store.list_runs()


def test_without_repair_the_damage_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    zero(path)
    with pytest.raises(StoreDamaged, match="is damaged"):
        open_store(path, repair=False)
    assert path.read_bytes() == b""  # left as it was


def test_no_store_records_nothing(capsys, tiny_bert_dir: Path) -> None:
    code = main(["--no-store", "predict", "good", "--model", str(tiny_bert_dir), "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["run_id"]
    assert not default_store_path().exists()


def test_migration_keeps_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    with duckdb.connect(str(path)) as con:  # a store of schema 2, as an older explainlm left it
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMP)")
        for version, _name, statements in MIGRATIONS[:2]:
            for sql in statements:
                con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
        con.execute(
            "INSERT INTO runs (run_id, created_at, command, status) "
            "VALUES ('old', now(), 'predict', 'finished')"
        )
    store = RunStore(path)
    assert store.schema_version == SCHEMA_VERSION
    backup = path.with_name("runs.duckdb.v2.bak")
    with duckdb.connect(str(backup), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 2
        assert con.execute("SELECT run_id FROM runs").fetchall() == [("old",)]
    assert store.get_run("old").status == "finished"


# ------------------------------------------------------------------------------- lifecycle
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_of_dead_processes_are_marked_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    store = RunStore(path)
    run = store.start_run("explain")
    with duckdb.connect(str(path)) as con:  # owned by a process that has exited since
        con.execute("UPDATE runs SET pid = ?, pid_started = NULL", [dead_pid()])
    live = store.start_run("explain")  # owned by this (live) process
    opened = open_store(path)
    assert opened.get_run(run).status == "interrupted"
    assert "is gone" in opened.get_run(run).error
    assert opened.get_run(live).status == "running"


def test_a_silent_owner_elsewhere_goes_stale(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    store = RunStore(path)
    run = store.start_run("benchmark")
    with duckdb.connect(str(path)) as con:  # another host, last heartbeat 2 hours ago
        con.execute(
            "UPDATE runs SET host = 'elsewhere', heartbeat_at = heartbeat_at - INTERVAL 2 HOUR"
        )
    assert [r.run_id for r in store.mark_stale_runs()] == [run]
    assert "no heartbeat" in store.get_run(run).error


def test_one_resume_at_a_time(tmp_path: Path) -> None:
    """A run whose owner is alive cannot be taken over; once its owner is gone it can."""
    path = tmp_path / "runs.duckdb"
    store = RunStore(path)
    run = store.start_run("explain")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with duckdb.connect(str(path)) as con:
            con.execute("UPDATE runs SET pid = ?, pid_started = NULL", [sleeper.pid])
        with pytest.raises(RunBusy, match="is busy"):
            store.claim_run(run, command="explain")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert store.claim_run(run, command="explain").run_id == run
    assert store.get_run(run).status == "running"


def test_heartbeat_is_refreshed_while_a_run_is_recorded(tmp_path: Path, monkeypatch) -> None:
    import time

    from explainlm.store import recording

    store = RunStore(tmp_path / "runs.duckdb")
    monkeypatch.setattr(recording, "Heartbeat", _fast_heartbeat(recording.Heartbeat))
    with store.recorded_run("explain") as run:
        first = _beat(store, run.run_id)
        time.sleep(0.5)
        assert _beat(store, run.run_id) > first


def _fast_heartbeat(cls):  # type: ignore[no-untyped-def]
    def make(beat):  # type: ignore[no-untyped-def]
        return cls(beat, interval=0.05)

    return make


def _beat(store: RunStore, run_id: str):  # type: ignore[no-untyped-def]
    with store.connect() as con:
        return con.execute("SELECT heartbeat_at FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]


def test_doctor_salvages_a_named_file(tmp_path: Path, capsys) -> None:
    old = tmp_path / "old.duckdb"
    ids = filled_store(old)
    shutil.copy(old, tmp_path / "copy.duckdb")
    assert main(["runs", "doctor", str(old), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (salvage,) = report["salvaged"]
    assert salvage["rows"] == {"runs": 3, "predictions": 3, "explanations": 0, "items": 0}
    assert {r.run_id for r in open_store().list_runs()} == set(ids)
    assert main(["runs", "doctor", str(old), "--json"]) == 0  # twice: nothing copied twice
    again = json.loads(capsys.readouterr().out)["salvaged"][0]["rows"]
    assert again == {"runs": 0, "predictions": 0, "explanations": 0, "items": 0}
