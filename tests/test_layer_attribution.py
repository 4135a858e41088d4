"""Layer attribution against Captum (LayerGradientXActivation, LayerIntegratedGradients, LayerActivation)
on the tiny BERT classifier and the tiny Llama zero-shot classifier, text by text, ≤ 1e-4."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.internals.hooks import architecture, resolve
from explainlm.internals.layer_attribution import LayerAttribution, layer_attribution
from explainlm.models import load_model
from explainlm.models.wrapper import Batch
from explainlm.targets import ClassTarget

TEXTS = ["a gorgeous , witty , seductive movie .", "dull", "the acting is worse than the plot"]
TOL = 1e-4


@pytest.fixture(scope="module")
def bert(tiny_bert_dir: Path) -> Any:
    return load_model(str(tiny_bert_dir), device="cpu")


@pytest.fixture(scope="module")
def llama(tiny_llama_dir: Path) -> Any:
    return load_model(str(tiny_llama_dir), "zero_shot", device="cpu")


def forward_fn(clf: Any, label: int) -> Any:
    """Captum's view of the model: input ids (and mask) → the probability of ``label``."""

    def f(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        enc = clf.encode(["x"])[0]
        batch = Batch([enc] * len(ids), ids, mask, pos, clf.wrapper.padding_side)
        return torch.softmax(clf.class_scores(batch).float(), -1)[:, label]

    return f


def captum_layer(clf: Any, point: str) -> tuple[Any, bool]:
    p = resolve(architecture(clf.wrapper.model), point)
    return p.module, p.side == "input"


def first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


@pytest.mark.parametrize("which", ["bert", "llama"])
@pytest.mark.parametrize(
    "point", ["layers.0.resid_post", "layers.1.resid_post", "layers.1.mlp.out", "layers.0.attn.out"]
)
def test_grad_x_activation_equals_captum(which: str, point: str, request: Any) -> None:
    from captum.attr import LayerGradientXActivation

    clf = request.getfixturevalue(which)
    engine = Engine(clf, ClassTarget("prob"))
    res = layer_attribution(engine, TEXTS, [point])
    layer, to_input = captum_layer(clf, point)
    for t in res.texts:
        label = clf.labels.index(t["label"])
        enc = clf.encode([t["text"]])[0]
        ids = torch.tensor([enc.input_ids])
        mask = torch.ones_like(ids)
        attr = LayerGradientXActivation(forward_fn(clf, label), layer).attribute(
            ids, additional_forward_args=(mask,), attribute_to_layer_input=to_input
        )
        expected = first(attr)[0].sum(-1).detach().numpy()
        np.testing.assert_allclose(t["scores"][0], expected, atol=TOL, rtol=0)


def test_all_points_in_one_pass_and_resid_pre(bert: Any) -> None:
    from captum.attr import LayerGradientXActivation

    engine = Engine(bert, ClassTarget("prob"))
    res = layer_attribution(engine, TEXTS, ["layers.*.resid_post", "embed"])
    assert res.points == ["layers.0.resid_post", "layers.1.resid_post", "embed"]
    assert engine.passes == 2  # prepare + one forward/backward for every point of all 3 texts
    assert np.asarray(res.texts[0]["scores"]).shape == (3, len(bert.encode([TEXTS[0]])[0]))
    # the embedding output is layer 0's input: same tensor, same attribution
    np.testing.assert_allclose(
        res.texts[2]["scores"][2],
        layer_attribution(engine, [TEXTS[2]], ["layers.0.resid_pre"]).texts[0]["scores"][0],
        atol=1e-6,
    )
    layer = architecture(bert.wrapper.model).embed
    t = res.texts[0]
    ids = torch.tensor([bert.encode([t["text"]])[0].input_ids])
    attr = LayerGradientXActivation(
        forward_fn(bert, bert.labels.index(t["label"])), layer
    ).attribute(ids, additional_forward_args=(torch.ones_like(ids),))
    np.testing.assert_allclose(t["scores"][2], first(attr)[0].sum(-1).detach().numpy(), atol=TOL)


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_layer_integrated_gradients_equal_captum(which: str, request: Any) -> None:
    from captum.attr import LayerIntegratedGradients

    clf = request.getfixturevalue(which)
    engine = Engine(clf, ClassTarget("prob"))
    point = "layers.0.resid_post"
    res = layer_attribution(engine, TEXTS, [point], method="integrated_gradients", steps=16)
    layer, _ = captum_layer(clf, point)
    pad = clf.wrapper.pad_token_id
    for t in res.texts:
        enc = clf.encode([t["text"]])[0]
        ids = torch.tensor([enc.input_ids])
        base = torch.tensor(
            [[i if sp else pad for i, sp in zip(enc.input_ids, enc.special, strict=True)]]
        )
        lig = LayerIntegratedGradients(forward_fn(clf, clf.labels.index(t["label"])), layer)
        attr, delta = lig.attribute(
            ids,
            baselines=base,
            additional_forward_args=(torch.ones_like(ids),),
            n_steps=16,
            method="gausslegendre",
            return_convergence_delta=True,
        )
        np.testing.assert_allclose(
            t["scores"][0], first(attr)[0].sum(-1).detach().numpy(), atol=TOL
        )
        # completeness gap Σ attr − (f(α=1) − f(α=0)) equals Captum's convergence delta
        assert t["delta"][0] == pytest.approx(float(delta[0]), abs=TOL)


def test_grad_cam_pools_the_gradient_over_positions(bert: Any) -> None:
    """Grad-CAM from Captum's raw layer gradients and activations: ReLU(Σ_h mean_t(g) a)."""
    from captum.attr import LayerActivation, LayerGradientXActivation

    engine = Engine(bert, ClassTarget("prob"))
    point = "layers.1.resid_post"
    res = layer_attribution(engine, TEXTS, [point], method="grad_cam")
    layer, _ = captum_layer(bert, point)
    for t in res.texts:
        f = forward_fn(bert, bert.labels.index(t["label"]))
        ids = torch.tensor([bert.encode([t["text"]])[0].input_ids])
        mask = torch.ones_like(ids)
        g = first(
            LayerGradientXActivation(f, layer, multiply_by_inputs=False).attribute(
                ids, additional_forward_args=(mask,)
            )
        )[0]
        a = first(LayerActivation(f, layer).attribute(ids, additional_forward_args=(mask,)))[0]
        expected = torch.relu((a * g.mean(0, keepdim=True)).sum(-1)).detach().numpy()
        np.testing.assert_allclose(t["scores"][0], expected, atol=TOL)


def test_errors_and_round_trip(bert: Any, tmp_path: Path) -> None:
    engine = Engine(bert, ClassTarget("prob"))
    with pytest.raises(UserError, match="unknown layer method"):
        layer_attribution(engine, TEXTS, method="lrp")
    with pytest.raises(UserError, match="no hidden dimension"):
        layer_attribution(engine, TEXTS, ["layers.0.attn.pattern"])
    with pytest.raises(UserError, match="unknown hook point"):
        layer_attribution(engine, TEXTS, ["layers.0.nothing"])
    res = layer_attribution(engine, ["<b>bold</b> claim"], ["layers.*.resid_post"])
    back = LayerAttribution.load(res.save(tmp_path / "l.json"))
    assert back.texts == res.texts and back.points == res.points
    html = res.save(tmp_path / "l.html").read_text()
    assert "<b>bold" not in html and "layers.1.resid_post" in html
    assert res.save(tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"
    assert set(res.to_pandas().columns) >= {"point", "position", "token", "score"}
