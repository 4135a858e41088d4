"""Targets computed against hand-written formulas."""

from __future__ import annotations

import math

import pytest
import torch

from explainlm.errors import UnknownLabelError, UserError
from explainlm.targets import ClassTarget, GenerationTarget, label_index, parse_target

LABELS = ["negative", "neutral", "positive"]
SCORES = torch.tensor([[1.0, 0.5, 3.0], [2.0, -1.0, 0.0]])


def test_class_targets_by_hand() -> None:
    p = torch.softmax(SCORES, -1)
    for kind, expected in [
        ("logit", SCORES[:, 2]),
        ("prob", p[:, 2]),
        ("log_odds", torch.log(p[:, 2] / (1 - p[:, 2]))),
    ]:
        t = ClassTarget(kind, "positive")
        idx, foil = t.indices(LABELS, SCORES)
        torch.testing.assert_close(t.value(SCORES, idx, foil), expected)
    t = ClassTarget("contrast", "positive", "negative")
    idx, foil = t.indices(LABELS, SCORES)
    torch.testing.assert_close(t.value(SCORES, idx, foil), SCORES[:, 2] - SCORES[:, 0])


def test_predicted_label_default() -> None:
    t = ClassTarget("prob")
    idx, _ = t.indices(LABELS, SCORES)
    assert idx.tolist() == [2, 0]


def test_log_odds_is_stable_for_confident_scores() -> None:
    s = torch.tensor([[0.0, 60.0]])
    v = ClassTarget("log_odds", "positive").value(s, torch.tensor([1]))
    assert math.isfinite(float(v)) and float(v) == pytest.approx(60.0, abs=1e-3)


def test_parse_target() -> None:
    assert parse_target(None) == ClassTarget("prob")
    assert parse_target("logit:positive") == ClassTarget("logit", "positive")
    assert parse_target("positive") == ClassTarget("prob", "positive")
    assert parse_target(None, contrast="positive:negative") == ClassTarget(
        "contrast", "positive", "negative"
    )
    assert parse_target("contrast:a:b").name == "contrast:a:b"
    for bad in ("contrast:a",):
        with pytest.raises(UserError):
            parse_target(bad)
    with pytest.raises(UserError):
        parse_target(None, contrast="positive")
    with pytest.raises(UserError):
        ClassTarget("probability")


def test_label_index_case_insensitive_and_unknown() -> None:
    assert label_index(LABELS, "Positive") == 2
    with pytest.raises(UnknownLabelError, match="negative, neutral, positive"):
        label_index(LABELS, "happy")


def test_generation_targets() -> None:
    lp = torch.tensor([[-0.5, -1.0, -2.0]])
    foil = torch.tensor([[-1.5, -1.0, -0.5]])
    torch.testing.assert_close(GenerationTarget().value(lp), lp)
    torch.testing.assert_close(GenerationTarget("token_prob").value(lp), lp.exp())
    torch.testing.assert_close(
        GenerationTarget("sequence_logprob").value(lp), torch.tensor([[-3.5]])
    )
    torch.testing.assert_close(GenerationTarget("contrast", "no").value(lp, foil), lp - foil)
    with pytest.raises(UserError):
        GenerationTarget("contrast")
