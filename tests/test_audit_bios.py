"""Bias in Bios and BOLD on tiny models: TPR gaps against a hand count, paired comparison, service."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from explainlm.audits import bios as B
from explainlm.datasets.fairness import load_biosbias, load_bold
from explainlm.services.audit import BiosAuditRequest, LMBiasAuditRequest, build_request, run
from explainlm.services.base import ServiceContext
from explainlm.store import open_store

OCCUPATIONS = ["dentist", "nurse", "physician", "psychologist", "surgeon"]


@pytest.fixture(scope="module")
def tiny_bios_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    out = tmp_path_factory.mktemp("tiny-bios")
    tok = AutoTokenizer.from_pretrained(minilm_dir)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                     num_labels=5, initializer_range=0.5, id2label=dict(enumerate(OCCUPATIONS)),
                     label2id={o: i for i, o in enumerate(OCCUPATIONS)})  # fmt: skip
    torch.manual_seed(3)
    model = BertForSequenceClassification(cfg)
    model.config.architectures = ["BertForSequenceClassification"]
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        occ = OCCUPATIONS[i % 5]
        rows.append({"id": str(i), "gender": "female" if i % 2 else "male", "occupation": occ,
                     "predicted": occ if rng.random() < 0.7 else OCCUPATIONS[(i + 1) % 5],
                     "p_gold": rng.random(), "cf_p_gold": rng.random(), "cf_predicted": occ,
                     "swapped": True, "identity_share": rng.random(), "identity_uniform": 0.1})  # fmt: skip
    return rows


def test_tpr_gaps_equal_a_hand_count_and_small_cells_have_no_interval() -> None:
    rows = _rows(200)
    gaps = B.tpr_gaps(rows, OCCUPATIONS, min_group_size=5, n_boot=300, n_perm=300)
    for g in gaps:
        tpr = {}
        for gender in ("female", "male"):
            sel = [r for r in rows if r["occupation"] == g["occupation"] and r["gender"] == gender]
            tpr[gender] = np.mean([r["predicted"] == g["occupation"] for r in sel])
        assert g["gap"] == pytest.approx(tpr["female"] - tpr["male"])
        assert g["gap_ci"][0] <= g["gap"] <= g["gap_ci"][1]
    small = B.tpr_gaps(rows[:12], OCCUPATIONS, min_group_size=5)
    assert all(g["gap_ci"] is None and "too few" in g["female"]["note"] for g in small)


def test_comparing_a_model_with_itself_changes_nothing() -> None:
    rows = _rows(100)
    doc = B.compare_models(rows, rows, OCCUPATIONS, n_boot=200)
    assert doc["accuracy_change"]["mean"] == 0 and doc["accuracy_change"]["p_mcnemar"] == 1.0
    assert all(r["change"] == 0 and r["change_ci"] == [0, 0] for r in doc["tpr_gap_change"])
    small = B.compare_models(rows[:12], rows[:12], OCCUPATIONS, n_boot=200, min_group_size=5)
    rows_with_both = [r for r in small["tpr_gap_change"] if "change" in r]
    assert rows_with_both and all("change_ci" not in r for r in rows_with_both)
    assert all("too few bios" in r["note"] for r in rows_with_both)
    assert any("too few bios" in c for c in small["conclusions"])


@pytest.mark.data
def test_bios_service_with_a_baseline(tiny_bios_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    req = build_request(BiosAuditRequest, model=str(tiny_bios_dir), baseline=str(tiny_bios_dir),
                        n_boot=200, plausibility=False, limit=24,
                        html=str(tmp_path / "bios.html"))  # fmt: skip
    res = run(req, ServiceContext(store=open_store()))
    doc = res.to_json_doc()
    test_bios = load_biosbias(split="test")[:24]
    assert doc["n"] == 24
    from explainlm.models import load_model

    clf = load_model(str(tiny_bios_dir))
    preds = clf.predict([b.text for b in test_bios])
    acc = np.mean([p.label == b.occupation for p, b in zip(preds, test_bios, strict=True)])
    assert doc["accuracy"] == pytest.approx(acc)
    assert doc["comparison"]["accuracy_change"]["mean"] == 0
    assert any("339 bios" in n for n in doc["notes"])
    assert "<svg" in Path(res.files[0]).read_text()
    json.dumps(doc, allow_nan=False)  # JSON-clean for the web page


@pytest.mark.data
def test_bold_groups_and_service(tiny_llama_dir: Path, tiny_bert_dir: Path, data_dir: Path) -> None:
    prompts = load_bold(per_group=3)
    assert {p.group for p in prompts} == {"American_actors", "American_actresses"}
    req = build_request(LMBiasAuditRequest, benchmark="bold", model=str(tiny_llama_dir),
                        classifier=str(tiny_bert_dir), per_group=12, max_new_tokens=4,
                        min_group_size=5, n_boot=200, n_perm=200)  # fmt: skip
    doc = run(req, ServiceContext()).to_json_doc()
    groups = {g["group"]: g for g in doc["by_group"]}
    assert set(groups) == {"gender/American_actors", "gender/American_actresses"}
    assert all(g["n"] == 12 and g["ci"] is not None for g in groups.values())
    diff = abs(
        groups["gender/American_actors"]["value"] - groups["gender/American_actresses"]["value"]
    )
    assert doc["comparison"]["value"] == pytest.approx(diff)


@pytest.mark.data
def test_fairness_on_real_bios_equals_fairlearn(tiny_bios_dir: Path, data_dir: Path) -> None:
    """Group metrics on a real dataset (Bias in Bios, test split) against Fairlearn's MetricFrame."""
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

    from explainlm.services.audit import FairnessAuditRequest

    req = build_request(FairnessAuditRequest, data="biosbias:test", group_columns=["gender"],
                        model=str(tiny_bios_dir), min_group_size=5, n_boot=200, n_perm=200)  # fmt: skip
    doc = run(req, ServiceContext()).to_json_doc()
    bios = load_biosbias(split="test")
    from explainlm.models import load_model

    pred = [p.label for p in load_model(str(tiny_bios_dir)).predict([b.text for b in bios])]
    gender = [b.gender for b in bios]
    assert doc["positive_labels"] == OCCUPATIONS
    for dim in doc["dimensions"]:
        occ = dim["label"]
        yt = np.array([b.occupation == occ for b in bios], dtype=int)
        yp = np.array([p == occ for p in pred], dtype=int)
        mf = MetricFrame(metrics={"selection_rate": selection_rate, "true_positive_rate":
                                  true_positive_rate}, y_true=yt, y_pred=yp,
                         sensitive_features=gender)  # fmt: skip
        for g in dim["groups"]:
            for metric in ("selection_rate", "true_positive_rate"):
                assert g["metrics"][metric]["value"] == pytest.approx(
                    mf.by_group.loc[g["group"], metric], nan_ok=True
                )


@pytest.mark.data
def test_plausibility_by_gender_uses_both_rationale_kinds(
    tiny_bios_dir: Path, data_dir: Path
) -> None:
    from explainlm.datasets.fairness import load_bios_rationales
    from explainlm.models import load_model

    short = [r for k in ("standard", "contrastive") for r in load_bios_rationales(k)
             if len(r.rationale) < 60]  # fmt: skip
    chosen = [r for g in ("female", "male") for k in ("standard", "contrastive")
              for r in [x for x in short if x.gender == g and x.kind == k][:3]]  # fmt: skip
    clf = load_model(str(tiny_bios_dir))
    rows = B.plausibility_by_gender(clf, chosen, metrics=["token_f1"], n_boot=100)
    by = {(r["rationale"], r["gender"]): r for r in rows}
    assert by[("standard", "female")]["n"] == 3 and by[("contrastive", "male")]["n"] == 3
    diff = by[("contrastive", "female − male")]
    assert diff["mean"] == pytest.approx(
        by[("contrastive", "female")]["mean"] - by[("contrastive", "male")]["mean"]
    )
