"""The compare service and ``explainlm compare`` on a tiny model: results, store, resume, reports."""

from __future__ import annotations

import json

import pytest

from explainlm.cli.app import main
from explainlm.errors import UserError
from explainlm.services.base import ServiceContext, build_request
from explainlm.services.compare import CompareRequest, load_result, run
from explainlm.store import open_store

ROWS = [
    ("a fine and moving film", "positive"),
    ("dull , far too long", "negative"),
    ("great acting but a weak plot", "negative"),
    ("i loved every minute", "positive"),
    ("not good at all", "negative"),
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINLM_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def dataset(tmp_path):
    p = tmp_path / "tiny.tsv"
    p.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in ROWS))
    return str(p)


def _request(model_dir, dataset, **kw):
    fields = {
        "reference": str(model_dir),
        "variants": ["rtn8", "magnitude:0.5"],
        "dataset": dataset,
        "methods": ["occlusion"],
        "metrics": ["comprehensiveness"],
        "rounds": 1,
        "timing_texts": 2,
        "chunk_size": 2,
        **kw,
    }
    return build_request(CompareRequest, **fields)


def test_compare_service_result_store_and_reload(tiny_bert_dir, dataset, tmp_path):
    store = open_store()
    res = run(_request(tiny_bert_dir, dataset), ServiceContext(store=store))
    doc = res.to_json_doc()
    json.dumps(doc, allow_nan=False)  # strict JSON: NaN became null
    assert [v["spec"] for v in doc["variants"]] == ["rtn8:g32:asym", "magnitude:0.5"]
    assert doc["dataset"]["n"] == len(ROWS)
    rtn8, mag = doc["variants"]
    # rtn8 is close to the reference; the ranking covers the one method
    assert rtn8["predictions"]["agreement"]["n"] == len(ROWS)
    assert rtn8["drift"]["occlusion"]["spearman"]["n"] >= 1
    assert rtn8["info"]["packed_bytes"] < rtn8["info"]["reference_bytes"]
    assert mag["info"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert doc["ranking"][0]["method"] == "occlusion"
    assert "comprehensiveness" in rtn8["faithfulness"]["occlusion"]
    assert rtn8["speed"]["rounds"] == 1
    # per-text rows: one per (variant, method, text)
    assert len(res.rows) == 2 * len(ROWS)
    again = load_result(store, res.run_id)
    assert again.to_json_doc() == doc
    written = again.write(tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Which explanations survive compression" in html and "<img src='data:image/png" in html
    assert all(p.exists() for p in written)
    assert store.get_run(res.run_id).status == "finished"


def test_resume_recomputes_nothing_that_was_stored(tiny_bert_dir, dataset, monkeypatch):
    import explainlm.compression.compare as cmp

    store = open_store()
    first = run(_request(tiny_bert_dir, dataset), ServiceContext(store=store))
    with store.transaction() as con:  # pretend the run died before its result was written
        con.execute(
            "DELETE FROM items WHERE run_id = ? AND kind = 'compare_result'", [first.run_id]
        )
    calls = []
    monkeypatch.setattr(cmp, "model_pass", lambda *a, **k: calls.append(a) or {})
    again = run(_request(tiny_bert_dir, dataset, resume=first.run_id), ServiceContext(store=store))
    assert calls == []
    a, b = first.to_json_doc(), again.to_json_doc()
    assert a["variants"][0]["drift"] == b["variants"][0]["drift"]
    with pytest.raises(UserError, match="top_k"):
        run(
            _request(tiny_bert_dir, dataset, resume=first.run_id, top_k=2),
            ServiceContext(store=store),
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rtn9"], "unknown variant"),
        (["rtn4", "--methods", "nope"], "unknown method"),
        (["rtn4", "rtn4:g32"], "listed twice"),
        (["rtn4", "--metrics", "token_f1"], "not faithfulness"),
        (["rtn4", "--param", "lime.n_samples=3"], "not requested"),
        (["rtn4", "--target-label", "mine"], "target_label"),
    ],
)
def test_bad_input_is_one_line_before_any_model_loads(args, message, capsys):
    assert main(["compare", "/nonexistent-model", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_json_and_show(tiny_bert_dir, dataset, capsys):
    rc = main(
        [
            "compare",
            str(tiny_bert_dir),
            "int8",
            "--dataset",
            dataset,
            "--methods",
            "occlusion,integrated_gradients",
            "--metrics",
            "",
            "--rounds",
            "1",
            "--timing-texts",
            "2",
            "--json",
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    v = doc["variants"][0]
    assert v["spec"] == "int8" and "integrated_gradients" in v["skipped"]
    assert set(v["drift"]) == {"occlusion"}
    assert main(["compare", "--show", doc["run_id"]]) == 0
    assert "most stable under compression" in capsys.readouterr().out
