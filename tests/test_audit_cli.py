"""``explainlm audit …`` end to end on tiny models: JSON, HTML, the run store, resuming, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explainlm.cli.app import main
from explainlm.store import open_store


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: object) -> dict:
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def user_error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == "" and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture()
def loans(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["text,label,approved,sex,age,score"]
    for i in range(240):
        sex = "f" if i % 2 else "m"
        age = "young" if i % 3 else "old"
        approved = "yes" if rng.random() < (0.35 if sex == "f" else 0.6) else "no"
        label = "yes" if rng.random() < 0.5 else "no"
        rows.append(f"applicant {i},{label},{approved},{sex},{age},{rng.random():.3f}")
    p = tmp_path / "loans.csv"
    p.write_text("\n".join(rows) + "\n")
    return p


def test_fairness_on_given_predictions_json_html_and_store(
    capsys, loans: Path, tmp_path: Path
) -> None:
    html = tmp_path / "fair.html"
    doc = cli_json(capsys, "audit", "fairness", loans, "--group", "sex,age", "--prediction-column",
                   "approved", "--positive-label", "yes", "--n-boot", "200", "--n-perm", "999",
                   "--html", html)  # fmt: skip
    assert doc["kind"] == "fairness" and [d["dimension"] for d in doc["dimensions"]] == [
        "sex", "age", "sex × age"]  # fmt: skip
    sex = doc["dimensions"][0]
    rates = {g["group"]: g["metrics"]["selection_rate"]["value"] for g in sex["groups"]}
    import pandas as pd

    frame = pd.read_csv(loans)
    expected = frame.assign(y=frame.approved == "yes").groupby("sex").y.mean().to_dict()
    assert rates == pytest.approx(expected)
    di = next(c for c in sex["comparisons"] if c["metric"] == "disparate_impact")
    assert di["value"] == pytest.approx(min(expected.values()) / max(expected.values()))
    assert any("disparate impact" in line for line in doc["conclusions"])
    page = html.read_text()
    assert "<svg" in page and "four-fifths" in page and "<script" not in page
    run = open_store().get_run(doc["run_id"])
    assert run.command == "audit-fairness" and run.status == "finished"
    assert run.summary["conclusions"] == doc["conclusions"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--group", "gender"], "no column 'gender'"),
        (["--group", "sex", "--min-group-size", "500"], "fewer than two groups have at least 500"),
        (["--group", "const"], "'const' is constant"),
        (["--group", "sex", "--correction", "bonf"], "correction"),
    ],
)
def test_fairness_bad_input_is_one_line_before_any_model(
    capsys, loans: Path, extra, message
) -> None:
    text = loans.read_text().splitlines()
    text = [text[0] + ",const"] + [r + ",x" for r in text[1:]]
    loans.write_text("\n".join(text) + "\n")
    line = user_error(
        capsys, "audit", "fairness", loans, "--model", "no-such-model-anywhere", *extra
    )
    assert message in line


def test_counterfactual_on_user_texts(capsys, tmp_path: Path, tiny_bert_dir: Path) -> None:
    texts = tmp_path / "t.tsv"
    texts.write_text("text\n" + "".join(
        f"{w} said the {x} was {y}.\n" for w in ("He", "She", "My father", "My aunt")
        for x in ("film", "play", "book") for y in ("good", "dull")) + "The sky is blue.\n")  # fmt: skip
    doc = cli_json(capsys, "audit", "counterfactual", "--model", tiny_bert_dir, "--data", texts,
                   "--attribution-limit", "8", "--n-boot", "200")  # fmt: skip
    assert doc["kind"] == "counterfactual" and doc["n_pairs"] == 24 and doc["label"] == "positive"
    from explainlm.models import load_model

    clf = load_model(str(tiny_bert_dir))
    worst = doc["worst_pairs"][0]
    pa, pb = clf.predict([worst["a"], worst["b"]])
    assert worst["gap"] == pytest.approx(pb.probs["positive"] - pa.probs["positive"], abs=1e-5)
    assert doc["attribution"]["method"] == "occlusion" and doc["attribution"]["n"] == 8
    assert any("1 of 25 texts" in n for n in doc["notes"])


def test_lm_bias_pairs_resume_after_interruption(capsys, tmp_path: Path, tiny_llama_dir: Path,
                                                monkeypatch) -> None:  # fmt: skip
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sent_more,sent_less,bias_type\n" + "".join(
        f"The {o} said {a} was late {i}.,The {o} said {b} was late {i}.,gender\n"
        for i in range(40) for o, a, b in [("nurse", "she", "he")]))  # fmt: skip
    from explainlm.audits import runner

    calls = {"n": 0}
    real = runner.run_chunks

    def interrupted(*a, **kw):
        def compute(part):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return a[1](part)

        return real(a[0], compute, *a[2:], **{**kw, "chunk_size": 16})

    from explainlm.audits import pipeline

    monkeypatch.setattr(pipeline, "run_chunks", interrupted)
    code, _out, err = cli(capsys, "audit", "lm-bias", "pairs", "--pairs", pairs, "--model",
                          tiny_llama_dir, "--json")  # fmt: skip
    assert code == 130
    run = open_store().list_runs()[0]
    assert run.status == "interrupted" and len(open_store().get_items(run.run_id, "audit")) == 16
    monkeypatch.setattr(pipeline, "run_chunks", real)
    doc = cli_json(capsys, "audit", "lm-bias", "pairs", "--pairs", pairs, "--model",
                   tiny_llama_dir, "--resume", run.run_id)  # fmt: skip
    assert doc["run_id"] == run.run_id and doc["n_items"] == 40
    assert open_store().get_run(run.run_id).status == "finished"
    fresh = cli_json(
        capsys, "audit", "lm-bias", "pairs", "--pairs", pairs, "--model", tiny_llama_dir
    )
    assert fresh["by_bias_type"][0]["metric"] == doc["by_bias_type"][0]["metric"]
    line = user_error(capsys, "audit", "lm-bias", "pairs", "--pairs", pairs, "--model",
                      tiny_llama_dir, "--resume", run.run_id, "--seed", "3")  # fmt: skip
    assert "options differ (seed)" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crows-pairs", "--bias-types", "gendr"], "unknown bias type(s) gendr"),
        (["pairs"], "--pairs FILE goes with the 'pairs' benchmark"),
        (["bbq", "--categories", "Race"], "unknown BBQ category Race"),
        (["bold", "--domains", "sports"], "unknown BOLD domain sports"),
        (["winobias", "--split", "train"], "split"),
    ],
)
def test_lm_bias_bad_input(capsys, args, message, data_dir: Path) -> None:
    line = user_error(capsys, "audit", "lm-bias", *args, "--model", "no-such-model-anywhere")
    assert message in line


def test_malformed_pair_file_names_the_line(capsys, tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("sent_more,sent_less\nA b.,A c.\n,A d.\n")
    line = user_error(capsys, "audit", "lm-bias", "pairs", "--pairs", p, "--model", "nope")
    assert "p.csv, line 3" in line


def test_train_augment_swaps_gender(tmp_path: Path, tiny_bert_dir: Path) -> None:
    from explainlm.training import train_classifier

    p = tmp_path / "t.tsv"
    p.write_text("text\tlabel\n" + "".join(
        f"{w} is a {o}.\t{o}\n" for w in ("She", "He", "Ebony", "Adam", "It") for o in ("nurse", "surgeon")))  # fmt: skip
    res = train_classifier(p, None, output_dir=tmp_path / "m", base_model=str(tiny_bert_dir),
                           epochs=1, batch_size=4, augment="swap:gender", progress=False,
                           log=lambda _m: None)  # fmt: skip
    meta = json.loads((res.output_dir / "explainlm.json").read_text())
    assert meta["params"]["augment"] == "swap:gender"
    assert meta["params"]["augmented_rows"] == 8 and meta["params"]["train_rows"] == 18
    from explainlm.errors import UserError

    with pytest.raises(UserError, match="unknown augmentation 'flip:gender'"):
        train_classifier(p, None, output_dir=tmp_path / "m2", augment="flip:gender")
