"""The bad-input corpus: every probe of issue 19 (and generated variants) fails the same way.

Each probe must exit with code 2 and one line on stderr, never a traceback, before any model loads
(loading a model is made to fail the test), and leave no run in the store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explainlm.cli.app import main
from explainlm.services.base import LocalModels
from explainlm.store import open_store
from explainlm.store.runs import default_store_path


class ModelLoaded(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object, name: str, *args: object, **kwargs: object) -> None:
        raise ModelLoaded(f"a model was loaded ({name}) before the input was checked")

    monkeypatch.setattr(LocalModels, "wrapper", refuse)
    monkeypatch.setattr(LocalModels, "task", refuse)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("text\tlabel\ngood film\t1\ncafé crème\t0\n".encode("latin-1"))
    latin_txt = tmp_path / "latin.txt"
    latin_txt.write_bytes("fine\nnaïve\n".encode("cp1252"))
    latin_jsonl = tmp_path / "latin.jsonl"
    latin_jsonl.write_bytes(
        json.dumps({"text": "x", "label": "1", "rationale": "1"}).encode()
        + b"\n"
        + '{"text": "café", "label": "0", "rationale": "1"}\n'.encode("latin-1")
    )
    folder = tmp_path / "folder"
    folder.mkdir()
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("hello\n", encoding="utf-8")
    return {
        "latin": latin,
        "latin_txt": latin_txt,
        "latin_jsonl": latin_jsonl,
        "folder": folder,
        "file": a_file,
    }


def run_probe(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """Run one probe; check exit code 2, one stderr line, no traceback, no run stored."""
    code = main(args)
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert code == 2, (args, code, out.err)
    assert len(lines) == 1, (args, out.err)
    assert "Traceback" not in out.err and lines[0].startswith("error: ")
    assert out.out == ""
    if default_store_path().is_file():
        assert open_store().list_runs() == [], args
    return lines[0]


PARAM_PROBES = [
    ("lime", "lime.n_samples=abc"),
    ("lime", "lime.n_samples=0"),
    ("lime", "lime.n_samples=-5"),
    ("lime", "lime.n_samples=2.5"),
    ("integrated_gradients", "integrated_gradients.steps=abc"),
    ("kernel_shap", "kernel_shap.seed=abc"),
    ("lime", "lime.kernel_width=0"),
]


@pytest.mark.parametrize(("method", "param"), PARAM_PROBES)
def test_method_parameters(capsys, method: str, param: str) -> None:
    line = run_probe(capsys, ["explain", "a film", "--method", method, "--param", param])
    assert param.split("=")[0] in line and repr(param.split("=")[1]).strip("'") in line


def _probes(f: dict[str, Path]) -> list[tuple[list[str], str]]:
    """(arguments, a fragment the one-line message must hold)."""
    return [
        (["predict", "--input", str(f["latin"])], "line 3"),
        (["explain", "--input", str(f["latin"])], "--encoding"),
        (["predict", "--input", str(f["latin_txt"])], "line 2"),
        (["probe", "--dataset", str(f["latin"]), "--label-column", "label"], "line 3"),
        (["heads", "--dataset", str(f["latin"])], "line 3"),
        (["benchmark", "--dataset", str(f["latin_jsonl"])], "line 2"),
        (["train", str(f["latin"]), "--label-column", "label", "-o", str(f["folder"])], "line 3"),
        (["--encoding", "klingon", "predict", "x"], "unknown encoding"),
        (["predict", "x", "--encoding", "klingon"], "unknown encoding"),
        (["runs", "list", "--limit", "-1"], "-1"),
        (["runs", "list", "--limit", "0"], "at least 1"),
        (["serve", "--port", "70000"], "70000"),
        (["serve", "--port", "0"], "--port"),
        (["explain", "x", "--html", str(f["folder"])], "is a folder"),
        (["explain", "x", "--html", str(f["file"] / "report.html")], "is a file"),
        (["generate", "x", "--html", str(f["folder"])], "is a folder"),
        (["benchmark", "--output", str(f["file"])], "is a file"),
        (["runs", "export", "abc", "--output", str(f["folder"])], "is a folder"),
        (["predict", "--input", str(f["folder"])], "is a folder"),
        (["predict", "--input", "/dev/null"], "not a regular file"),
        (["predict", "--input", str(f["folder"] / "missing.tsv")], "not found"),
        (["explain", "x", "--contrast", "positive:positive"], "itself"),
        (["explain", "x", "--contrast", "positive:negative", "--target", "negative"], "conflict"),
        (["explain", "x", "--top-k", "-1"], "-1"),
        (["explain", "x", "--top-k", "0"], "--top-k"),
        (["generate", "x", "--max-new-tokens", "0"], "(got 0)"),
        (["generate", "x", "--max-new-tokens", "100000"], "100000"),
        (["predict", "x", "--max-new-tokens", "-3"], "-3"),
        (["explain", "x", "--max-batch-tokens", "0"], "(got 0)"),
        (["explain", "x", "--limit", "abc"], "--limit"),
        (["explain", "x", "--method", "nope"], "nope"),
        (["explain", "x", "--method", "lime", "--param", "occlusion.x=1"], "occlusion"),
        (["explain", "x", "--param", "no-dot"], "METHOD.NAME=VALUE"),
        (["explain", "   "], "empty"),
        (["explain", "--resume", "no-such-run"], "no-such-run"),
        (["explain", "x", "--chunk-size", "0"], "chunk_size"),
        (["explain", "x", "--granularity", "paragraph"], "paragraph"),
    ]


def test_every_probe_is_one_line_exit_2(capsys, files: dict[str, Path]) -> None:
    for args, fragment in _probes(files):
        line = run_probe(capsys, args)
        assert fragment in line, (args, line)


def test_home_is_a_file(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home-file"
    home.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("EXPLAINLM_HOME", str(home))
    for args in (["predict", "x"], ["runs", "list"], ["explain", "x", "--method", "occlusion"]):
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2 and "EXPLAINLM_HOME" in err and len(err.strip().splitlines()) == 1


def test_resume_of_another_command(capsys) -> None:
    store = open_store()
    run_id = store.start_run("predict", model="m", params={"texts": ["x"]})
    store.finish_run(run_id, status="interrupted")
    for command, words in (("explain", "not an explain run"), ("benchmark", "not a benchmark")):
        code = main([command, "--resume", run_id])
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert [r.run_id for r in store.list_runs()] == [run_id]  # nothing added, nothing changed
    assert store.get_run(run_id).status == "interrupted"


BAD_INT = st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)),
    st.text(alphabet="abcxyz-_ ", min_size=1, max_size=6).filter(lambda s: s.strip()),
)
GENERATED = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@GENERATED
@given(value=BAD_INT)
def test_generated_sample_counts(capsys, value: object) -> None:
    run_probe(capsys, ["explain", "x", "--method", "lime", "--param", f"lime.n_samples={value}"])


@GENERATED
@given(
    option=st.sampled_from(["--top-k", "--max-batch-tokens", "--limit", "--chunk-size"]),
    value=st.integers(max_value=0),
)
def test_generated_explain_ranges(capsys, option: str, value: int) -> None:
    run_probe(capsys, ["explain", "x", option, str(value)])


@GENERATED
@given(port=st.one_of(st.integers(max_value=0), st.integers(min_value=65536)))
def test_generated_ports(capsys, port: int) -> None:
    run_probe(capsys, ["serve", "--port", str(port)])


@GENERATED
@given(label=st.text(alphabet="abcdefgh", min_size=1, max_size=8))
def test_generated_self_contrasts(capsys, label: str) -> None:
    run_probe(capsys, ["explain", "x", "--contrast", f"{label}:{label}"])
