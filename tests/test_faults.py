"""Fault injection with real processes: SIGKILL and SIGTERM at random points of ``explain`` and
``benchmark``, then a restart with ``--resume``.

Every round checks what the issue asks: no run is left ``running``, no row is lost or stored twice,
and the resumed results equal those of an uninterrupted run of the same command (same chunks, same
process settings, so equal to the last bit). A SIGTERM must also close the run itself (status
``interrupted`` straight after the process exits, exit code 143) and print the exact resume
command; after a SIGKILL the next process to open the store marks the dead run ``interrupted``.

The kill points are random (seeded): while the model loads (no run yet), or after a random number
of stored rows, read from the store while the process writes to it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from explainlm.store import open_store

MAIN = "import sys; from explainlm.cli.app import main; sys.exit(main(sys.argv[1:]))"
WORDS = "good bad film plot actor dull great boring fine story slow warm".split()


def spawn(home: Path, *args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "EXPLAINLM_HOME": str(home), "OMP_NUM_THREADS": "1"}
    env.pop("EXPLAINLM_NO_STORE", None)
    return subprocess.Popen(
        [sys.executable, "-c", MAIN, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


def raw(home: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the store as it is (no repair, no stale-run marking), waiting out the writer's lock."""
    if not (home / "runs.duckdb").exists():
        return []
    for _ in range(200):
        try:
            with duckdb.connect(str(home / "runs.duckdb"), read_only=True) as con:
                return con.execute(sql).fetchall()
        except duckdb.CatalogException:
            return []  # the store is not created yet
        except duckdb.IOException:
            time.sleep(0.01)
    raise AssertionError("the store stayed locked")


def untimed(doc: Any) -> Any:
    """A document without its wall-clock timings (``seconds``): everything else must be equal."""
    if isinstance(doc, dict):
        return {k: untimed(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [untimed(v) for v in doc]
    return doc


def difference(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str | None:
    """Where two lists of explanation documents first differ, timings aside (None when equal)."""
    got, expected = untimed(got), untimed(expected)
    if len(got) != len(expected):
        return f"{len(got)} explanations, expected {len(expected)}"
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return f"explanation {i} ({b.get('method')}), {key}: {a.get(key)} != {b.get(key)}"
    return None


def count(home: Path, table: str) -> int:
    found = raw(home, f"SELECT count(*) FROM {table}")
    return found[0][0] if found else 0


def kill_at(
    proc: subprocess.Popen[str], home: Path, table: str, rows: int | None, sig: int
) -> None:
    """Send ``sig`` once ``rows`` rows of ``table`` are stored (None: after a random delay while
    the process starts and loads its model)."""
    if rows is None:
        time.sleep(random.uniform(0.3, 2.5))
    else:
        while proc.poll() is None and count(home, table) < rows:
            time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(sig)


def check_killed(home: Path, code: int, err: str, sig: int, command: str) -> str | None:
    """The run the killed process left (None if it died before starting one), checked."""
    runs = raw(home, "SELECT run_id, status, pid FROM runs")
    if not runs:
        return None
    ((run_id, status, pid),) = runs
    if code == 0:  # it finished before the signal
        assert status == "finished"
        return run_id
    if sig == signal.SIGTERM:
        assert code == 143, err
        assert status == "interrupted"  # closed by the process itself
        assert f"resume it with: explainlm {command} --resume {run_id}" in err
        assert "Traceback" not in err
    else:
        assert code == -signal.SIGKILL
        assert status == "running" and pid  # nobody could close it …
        (marked,) = [r for r in open_store(home / "runs.duckdb").list_runs() if r.run_id == run_id]
        assert marked.status == "interrupted"  # … until the next process opened the store
        assert "is gone" in marked.error
    return run_id


def restart(home: Path, run_id: str | None, fresh: list[object], command: str) -> dict[str, Any]:
    args = [command, "--resume", run_id, "--json"] if run_id else [*fresh]
    code, out, err = finish(spawn(home, *args))
    assert code == 0, err
    assert [r[0] for r in raw(home, "SELECT status FROM runs")] == ["finished"]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def texts_file(tmp_path: Path) -> Path:
    rng = random.Random(7)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) for _ in range(30)]
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_explain_killed_anywhere_resumes_to_identical_results(
    tmp_path: Path, tiny_bert_dir: Path, texts_file: Path
) -> None:
    random.seed(19)
    args: list[object] = ["explain", "--input", texts_file, "--model", tiny_bert_dir]
    args += ["--method", "occlusion", "--method", "integrated_gradients", "--chunk-size", "2"]
    args += ["--json"]
    code, out, err = finish(spawn(tmp_path / "base", *args))
    assert code == 0, err
    expected = json.loads(out)["explanations"]
    n_rows = len(expected)
    assert n_rows == 60
    elsewhere = tmp_path / "elsewhere"  # resumed from another folder: the spec has absolute paths
    elsewhere.mkdir()
    landed = 0
    plan = [(signal.SIGKILL, None), (signal.SIGKILL, 8), (signal.SIGTERM, 20), (signal.SIGTERM, 44)]
    for i, (sig, rows) in enumerate(plan):
        home = tmp_path / f"home{i}"
        proc = spawn(home, *args)
        kill_at(proc, home, "explanations", rows, sig)
        code, _, err = finish(proc)
        run_id = check_killed(home, code, err, sig, "explain")
        landed += code != 0 and run_id is not None
        assert (
            count(home, "explanations") % 2 == 0
        )  # whole texts only: each chunk is one transaction
        cwd = os.getcwd()
        os.chdir(elsewhere)
        try:
            doc = restart(home, run_id, args, "explain")
        finally:
            os.chdir(cwd)
        assert difference(doc["explanations"], expected) is None
        keys = raw(home, "SELECT idx, text, method FROM explanations ORDER BY idx")
        assert [k[0] for k in keys] == list(range(n_rows))  # none lost, none twice
        assert [(k[1], k[2]) for k in keys] == [(e["text"], e["method"]) for e in expected]
    assert landed >= 2  # most signals hit a live run (not all before it started or after it ended)


def test_benchmark_killed_anywhere_resumes_to_identical_results(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    random.seed(23)
    rng = random.Random(5)
    data = tmp_path / "toy.jsonl"
    rows = []
    for i in range(24):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 10))]
        rationale = " ".join("1" if w in ("good", "bad", "dull", "great") else "0" for w in words)
        rows.append({"text": " ".join(words), "label": str(i % 2), "rationale": rationale})
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    args: list[object] = ["benchmark", "--model", tiny_bert_dir, "--dataset", data]
    args += ["--methods", "occlusion,random", "--metrics", "comprehensiveness,sufficiency"]
    args += ["--chunk-size", "2", "--json"]
    code, out, err = finish(spawn(tmp_path / "base", *args))
    assert code == 0, err
    expected = json.loads(out)
    landed = 0
    for i, (sig, n) in enumerate([(signal.SIGKILL, 6), (signal.SIGTERM, 12)]):
        home = tmp_path / f"home{i}"
        proc = spawn(home, *args)
        kill_at(proc, home, "items", n, sig)
        code, _, err = finish(proc)
        run_id = check_killed(home, code, err, sig, "benchmark")
        landed += code != 0 and run_id is not None
        doc = restart(home, run_id, args, "benchmark")
        assert {k: v for k, v in doc.items() if k != "run_id"} == {
            k: v for k, v in expected.items() if k != "run_id"
        }
        keys = [k[0] for k in raw(home, "SELECT key FROM items ORDER BY key")]
        assert keys == [f"{j:06d}" for j in range(24)]
    assert landed >= 1
