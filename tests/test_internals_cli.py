"""CLI commands of the internals: lens, patch, probe, heads, activations (on the tiny models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explainlm.cli import app as cli_app
from explainlm.cli import internals
from explainlm.store import open_store


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    """Until the lead wires ``internals.register(app)`` into cli/app.py, add the commands here."""
    names = {c.name for c in cli_app.app.registered_commands}
    if "lens" not in names:
        internals.register(cli_app.app)


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = cli_app.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def sst(tmp_path: Path) -> Path:
    p = tmp_path / "d.tsv"
    rows = [("a good and fine film", 1), ("bad, dull <b>film</b>", 0)] * 6
    p.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    return p


def test_lens_json_and_html(capsys, tiny_llama_dir: Path, tmp_path: Path) -> None:
    html = tmp_path / "lens.html"
    code, out, _ = run(
        capsys,
        "lens",
        "The <b>cat</b> sat",
        "--model",
        tiny_llama_dir,
        "--top-k",
        "2",
        "--json",
        "--html",
        html,
    )
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"tokens", "layers"}
    assert [x["layer"] for x in doc["layers"]] == [0, 1]
    assert all(len(pos) == 2 for pos in doc["layers"][-1]["top"])
    assert "<b>cat" not in html.read_text()
    runs = open_store().list_runs()
    assert runs[0].command == "lens" and runs[0].status == "finished"
    assert open_store().get_items(runs[0].run_id, "lens")["result"] == doc
    code, out, _ = run(capsys, "lens", "The cat sat", "--model", tiny_llama_dir, "--target", " mat")
    assert code == 0 and "layer" in out


def test_patch_json_and_errors(capsys, tiny_llama_dir: Path, tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "patch",
        "--clean",
        "The cat sat on the",
        "--corrupt",
        "The dog sat on the",
        "--target",
        " mat",
        "--model",
        tiny_llama_dir,
        "--json",
        "--html",
        tmp_path / "p.html",
        "--figure",
        tmp_path / "p.svg",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["grid"][-1][-1] == pytest.approx(1.0, abs=1e-5)
    assert (tmp_path / "p.svg").exists() and (tmp_path / "p.html").exists()
    code, _, err = run(
        capsys,
        "patch",
        "--clean",
        "The cat sat",
        "--corrupt",
        "The hippopotamus sat",
        "--target",
        " mat",
        "--model",
        tiny_llama_dir,
    )
    assert code == 2 and "same length" in err and "Traceback" not in err
    code, _, err = run(
        capsys,
        "patch",
        "--clean",
        "The cat sat",
        "--subject",
        "cat",
        "--target",
        " mat",
        "--component",
        "nope",
        "--model",
        tiny_llama_dir,
    )
    assert code == 2 and "unknown component" in err


def test_probe_and_activations(capsys, tiny_bert_dir: Path, sst: Path, tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "probe",
        "--dataset",
        sst,
        "--text-column",
        "sentence",
        "--label-column",
        "label",
        "--model",
        tiny_bert_dir,
        "--folds",
        "3",
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["layers"] == ["embed", "layers.0.resid_post", "layers.1.resid_post"]
    assert len(doc["ci_low"]) == 3 and doc["n"] == 12
    items = open_store().get_items(doc["run_id"], "probe")
    assert set(items) == set(doc["layers"])
    tb = tmp_path / "tb"
    code, out, _ = run(
        capsys,
        "activations",
        "--dataset",
        sst,
        "--text-column",
        "sentence",
        "--label-column",
        "label",
        "--model",
        tiny_bert_dir,
        "--export",
        "tensorboard",
        tb,
        "--probe",
        "--json",
        "--html",
        tmp_path / "act.html",
    )
    assert code == 0
    assert json.loads(out)["points"] == doc["layers"]
    assert (tb / "projector_config.pbtxt").exists()
    page = (tmp_path / "act.html").read_text()
    assert all(p in page for p in doc["layers"]) and "selectivity" in page and "tensorboard" in page
    code, _, err = run(
        capsys,
        "activations",
        "--dataset",
        sst,
        "--text-column",
        "sentence",
        "--model",
        tiny_bert_dir,
        "--export",
        "csv",
        tb,
    )
    assert code == 2 and "tensorboard" in err


def test_heads(capsys, tiny_bert_dir: Path, sst: Path, tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "heads",
        "--dataset",
        sst,
        "--text-column",
        "sentence",
        "--label-column",
        "label",
        "--model",
        tiny_bert_dir,
        "--limit",
        "4",
        "--json",
        "--html",
        tmp_path / "h.html",
    )
    assert code == 0
    doc = json.loads(out)
    assert len(doc["grid"]) == 2 and len(doc["grid"][0]) == 2 and doc["n"] == 4
    code, _, err = run(
        capsys,
        "heads",
        "--dataset",
        sst,
        "--text-column",
        "sentence",
        "--label-column",
        "label",
        "--model",
        tiny_bert_dir,
        "--ablation",
        "random",
    )
    assert code == 2 and "ablation" in err
