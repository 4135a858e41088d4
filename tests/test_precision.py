"""The precision policy: bf16 / int8 variants against float32, what is recorded, and ``auto``
(the one-time measurement, its cache, and its decision rule)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explainlm import explain
from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.explanation import ExplanationSet
from explainlm.models import Generator, make_task
from explainlm.models import autotune as cal
from explainlm.models.precision import PrecisionPlan, head_modules, variant_task

TEXTS = ["a wonderful , moving film", "dull and far too long"]


@pytest.fixture(scope="module")
def bert_clf(tiny_bert):
    return make_task(tiny_bert)


@pytest.fixture(scope="module")
def llama_clf(tiny_llama):
    return make_task(tiny_llama, "zero_shot")


def _scores(task, texts):
    return task.scores(task.encode(texts)).numpy()


@pytest.mark.parametrize("which", ["bert_clf", "llama_clf"])
def test_variants_agree_with_float32_and_leave_it_untouched(which, request) -> None:
    task = request.getfixturevalue(which)
    before = {k: v.clone() for k, v in task.wrapper.model.state_dict().items()}
    ref = _scores(task, TEXTS)
    for kind, tol in (("bf16", 0.05), ("int8", 0.05)):
        v = variant_task(task, kind)
        assert v.wrapper.model is not task.wrapper.model
        out = _scores(v, TEXTS)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, atol=tol * max(1.0, np.abs(ref).max()))
        assert variant_task(task, kind).wrapper is v.wrapper  # made once per model
    # the float32 model is exactly as it was
    for k, t in task.wrapper.model.state_dict().items():
        assert torch.equal(t, before[k]), k
    # the output heads of the bf16 copy are float32 (and untied from the embeddings)
    bf16 = variant_task(task, "bf16").wrapper.model
    for head in head_modules(bf16).values():
        assert all(p.dtype == torch.float32 for p in head.parameters())
    assert bf16.get_input_embeddings().weight.dtype == torch.bfloat16


def test_int8_variant_quantizes_the_linear_layers(bert_clf) -> None:
    model = variant_task(bert_clf, "int8").wrapper.model
    kinds = {type(m).__module__ for m in model.modules()}
    assert any("quantized" in k for k in kinds)
    heads = head_modules(model)
    assert all(type(h) is torch.nn.Linear for h in heads.values())  # the head stays float32


def test_results_record_their_precision(bert_clf, tmp_path) -> None:
    res = explain(
        TEXTS,
        bert_clf,
        ["integrated_gradients", "occlusion", "attention"],
        precision="int8",
        method_params={"integrated_gradients": {"steps": 8}},
        check=False,
    )
    got = {e.method: e.diagnostics["precision"] for e in res}
    # int8 has no backward pass: gradient methods run in float32 and say so
    assert got == {"integrated_gradients": "fp32", "occlusion": "int8", "attention": "fp32"}
    path = tmp_path / "x.json"
    res.save(path)
    again = ExplanationSet.load(path)
    assert [e.diagnostics["precision"] for e in again] == [e.diagnostics["precision"] for e in res]
    assert json.loads(path.read_text())


def test_bf16_gradients_close_to_float32(bert_clf) -> None:
    p = {"integrated_gradients": {"steps": 16}}
    ref = explain(TEXTS, bert_clf, ["integrated_gradients"], method_params=p, precision="fp32")
    for mode in ("weights", "autocast"):
        plan = PrecisionPlan("bf16", "bf16", mode, "bf16")
        out = explain(TEXTS, bert_clf, ["integrated_gradients"], method_params=p, precision=plan)
        for a, b in zip(ref, out, strict=True):
            assert b.diagnostics["precision"] == f"bf16-{mode}"
            assert np.corrcoef(a.word_scores, b.word_scores)[0, 1] > 0.95


def test_bad_precision_is_one_line_error(bert_clf) -> None:
    with pytest.raises(UserError, match="precision must be one of auto, fp32, bf16, int8"):
        explain(TEXTS, bert_clf, ["occlusion"], precision="fp16")


def test_auto_keeps_small_models_in_float32_without_measuring(bert_clf, monkeypatch) -> None:
    monkeypatch.delenv("EXPLAINLM_PRECISION")
    monkeypatch.setattr(cal, "measure", lambda task: pytest.fail("measured a tiny model"))
    plan = cal.resolve_precision("auto", bert_clf)
    assert (plan.forward, plan.backward, plan.source) == ("fp32", "fp32", "default")
    assert not cal.cache_path().exists()


def test_auto_measures_once_and_caches_per_machine(bert_clf, monkeypatch) -> None:
    monkeypatch.delenv("EXPLAINLM_PRECISION")
    monkeypatch.setattr(cal, "MIN_PARAMETERS", 0)
    monkeypatch.setattr(cal, "BUDGETS", (256, 512))
    monkeypatch.setattr(cal, "MEASURE_BUDGET", 256)
    calls = []
    real = cal.measure
    monkeypatch.setattr(cal, "measure", lambda task: calls.append(1) or real(task))
    plan = cal.resolve_precision("auto", bert_clf)
    assert plan.source == "measured" and plan.requested == "auto"
    assert plan.max_batch_tokens in (256, 512) and plan.forward_batch_tokens in (256, 512)
    again = cal.resolve_precision("auto", bert_clf)
    assert again.source == "cached" and len(calls) == 1
    assert (again.forward, again.backward, again.bf16_mode) == (
        plan.forward,
        plan.backward,
        plan.bf16_mode,
    )
    entry = next(iter(json.loads(cal.cache_path().read_text()).values()))
    measured = entry["measured"]
    fwd, bwd = cal.candidates(bert_clf.wrapper.device)
    assert set(measured["forward"]) == set(fwd) and set(measured["backward"]) == set(bwd)
    assert plan.pass_overhead_tokens == measured["pass_overhead_tokens"] >= 0.0
    assert entry["version"] == cal.CACHE_VERSION
    # an engine on auto takes the measured pass sizes
    engine = Engine(bert_clf, precision="auto", max_batch_tokens=None)
    assert engine.max_batch_tokens == plan.max_batch_tokens
    assert engine.forward_batch_tokens == plan.forward_batch_tokens
    # another thread count is another machine: measured again
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        cal.resolve_precision("auto", bert_clf)
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 2
    # an entry an older version measured (no per-pass overhead) is measured again
    entries = json.loads(cal.cache_path().read_text())
    for e in entries.values():
        e.pop("version")
    cal.cache_path().write_text(json.dumps(entries))
    assert cal.resolve_precision("auto", bert_clf).source == "measured" and len(calls) == 3


def test_decision_rule() -> None:
    def measured(fwd, bwd):
        return {"forward": fwd, "backward": bwd, "budget": {"forward": 1024, "backward": 2048}}

    cpu = torch.device("cpu")
    # bf16 weights 2x faster for gradients, int8 fastest forward
    plan = cal.decide(
        measured(
            {"fp32": 1.0, "bf16-weights": 0.8, "bf16-autocast": 0.9, "int8": 0.5},
            {"fp32": 1.0, "bf16-weights": 0.5, "bf16-autocast": 0.9},
        ),
        "amx_bf16",
        cpu,
    )
    assert (plan.forward, plan.backward, plan.bf16_mode) == ("int8", "bf16", "weights")
    assert (plan.max_batch_tokens, plan.forward_batch_tokens) == (2048, 1024)
    # within the margin of fp32: stay fp32
    plan = cal.decide(measured({"fp32": 1.0, "int8": 0.95}, {"fp32": 1.0}), None, cpu)
    assert (plan.forward, plan.backward) == ("fp32", "fp32")
    # autocast faster than bf16 weights
    plan = cal.decide(
        measured(
            {"fp32": 1.0, "bf16-weights": 0.9, "bf16-autocast": 0.6},
            {"fp32": 1.0, "bf16-weights": 0.8, "bf16-autocast": 0.5},
        ),
        "avx512_bf16",
        cpu,
    )
    assert (plan.forward, plan.backward, plan.bf16_mode) == ("bf16", "bf16", "autocast")
    # a fast forward candidate that moves the probabilities is refused
    m = measured(
        {"fp32": 1.0, "bf16-weights": 0.8, "bf16-autocast": 0.9, "int8": 0.3},
        {"fp32": 1.0, "bf16-weights": 0.95, "bf16-autocast": 0.97},
    )
    m["max_prob_diff"] = {"fp32": 0.0, "bf16-weights": 0.002, "bf16-autocast": 0.002, "int8": 0.16}
    plan = cal.decide(m, "amx_bf16", cpu)
    assert (plan.forward, plan.backward) == ("bf16", "fp32")


def test_pass_size_leaves_the_default_only_by_the_margin() -> None:
    """A size is taken over the default 2,048 only if it is at least 1.10x faster per token, and
    the measured sweep runs the precisions the plan will use (not merely the fastest)."""
    assert cal.choose_budget({"1024": 3.09e-4, "2048": 3.06e-4, "4096": 3.04e-4}) == 2048
    assert cal.choose_budget({"1024": 6.2e-3, "2048": 1.79e-3, "4096": 1.54e-3}) == 4096
    assert cal.choose_budget({"1024": 1.0e-3, "2048": 1.5e-3, "4096": 2.0e-3}) == 1024
    # bf16 autocast 1.05x faster for gradients: within the margin, so the plan (and its pass
    # size sweep) is fp32
    m = {
        "forward": {"fp32": 1.0, "bf16-weights": 0.3, "bf16-autocast": 0.5},
        "backward": {"fp32": 1.0, "bf16-weights": 1.0, "bf16-autocast": 0.95},
        "max_prob_diff": {"fp32": 0.0, "bf16-weights": 0.002, "bf16-autocast": 0.002},
    }
    assert cal.choose(m) == ("bf16-weights", "fp32")


def test_agreement_is_the_largest_probability_change(bert_clf) -> None:
    """Against the public ``predict`` path, one text at a time (not the batched scores the
    agreement gate itself uses)."""
    int8 = variant_task(bert_clf, "int8")
    largest = 0.0
    for text in cal.AGREEMENT_TEXTS:
        ref, out = bert_clf.predict([text])[0].probs, int8.predict([text])[0].probs
        largest = max(largest, *(abs(out[k] - ref[k]) for k in ref))
    assert largest > 0  # int8 really moves the probabilities of this model
    # dynamic int8 scales activations per batch, so one-text passes differ slightly from the
    # gate's batched pass (here by ~1 % of the change itself); fp32 passes would agree to 1e-6
    assert cal.agreement(bert_clf, "int8") == pytest.approx(largest, rel=0.05)
    assert cal.agreement(bert_clf, "fp32") == 0.0


def test_auto_keeps_integrated_gradients_in_float32(bert_clf) -> None:
    """Under auto a precision-sensitive method (IG) differentiates in float32; others follow the
    plan; an explicit bf16 request is obeyed."""
    plan = PrecisionPlan("bf16", "bf16", "weights", "auto")
    p = {"integrated_gradients": {"steps": 8}}
    out = explain(
        TEXTS, bert_clf, ["integrated_gradients", "grad_x_input"], method_params=p, precision=plan
    )
    got = {e.method: e.diagnostics["precision"] for e in out}
    assert got == {"integrated_gradients": "fp32", "grad_x_input": "bf16-weights"}
    ref = explain(TEXTS, bert_clf, ["integrated_gradients"], method_params=p, precision="fp32")
    for a, b in zip([e for e in out if e.method == "integrated_gradients"], ref, strict=True):
        np.testing.assert_allclose(a.word_scores, b.word_scores, rtol=1e-4, atol=1e-6)


def test_generation_runs_in_the_requested_precision(tiny_llama) -> None:
    from explainlm.generation import explain_generation

    gen = Generator(tiny_llama, chat=False)
    ref = explain_generation(
        ["The capital of France is"], gen, ["occlusion"], max_new_tokens=3, precision="fp32"
    )[0]
    out = explain_generation(
        ["The capital of France is"],
        gen,
        ["occlusion"],
        target_texts=[ref.continuation],
        precision="bf16",
    )[0]
    assert out.diagnostics["precision"] == "bf16-weights"
    assert ref.diagnostics["precision"] == "fp32"


def test_environment_pins_what_auto_means(bert_clf, monkeypatch) -> None:
    monkeypatch.setattr(cal, "measure", lambda task: pytest.fail("measured a pinned machine"))
    monkeypatch.setattr(cal, "MIN_PARAMETERS", 0)
    monkeypatch.setenv("EXPLAINLM_PRECISION", "bf16")
    plan = cal.resolve_precision("auto", bert_clf)
    assert (plan.forward, plan.backward, plan.requested, plan.source) == (
        "bf16",
        "bf16",
        "auto",
        "environment",
    )
    assert cal.resolve_precision("fp32", bert_clf).forward == "fp32"  # explicit wins
    monkeypatch.setenv("EXPLAINLM_PRECISION", "fp16")
    with pytest.raises(UserError, match="precision must be one of"):
        cal.resolve_precision("auto", bert_clf)


def test_runs_stored_before_the_policy_resume_in_float32() -> None:
    """A stored spec without ``precision`` (recorded before the policy) resumes in float32, a
    stored one keeps its own, and an omitted pass size stays ``None`` (re-measured, not 2048)."""
    from types import SimpleNamespace

    from explainlm.services.benchmark import stored_request
    from explainlm.services.explain import ExplainRequest

    old = {"texts": ["a fine film"], "model": "m", "methods": ["occlusion"]}
    assert ExplainRequest.from_stored(old).precision == "fp32"
    new = ExplainRequest(texts=["a fine film"], model="m", methods=["occlusion"]).spec()
    assert new["precision"] == "auto" and new["max_batch_tokens"] is None
    again = ExplainRequest.from_stored(new)
    assert again.precision == "auto" and again.max_batch_tokens is None
    rec = SimpleNamespace(
        command="benchmark", run_id="r", model="m", params={"methods": ["random"]}
    )
    assert stored_request(rec).precision == "fp32"
    rec.params["precision"] = "bf16"
    assert stored_request(rec).precision == "bf16"


def test_predict_with_a_generator_under_auto(tiny_llama_dir, monkeypatch) -> None:
    """``predict --task generator`` under ``auto`` measures the generator's model as generation
    does (next-token scores), records the plan, and predicts (it used to fail on a generator)."""
    from explainlm.services.base import ServiceContext
    from explainlm.services.predict import PredictRequest, run

    monkeypatch.delenv("EXPLAINLM_PRECISION")
    monkeypatch.setattr(cal, "MIN_PARAMETERS", 0)
    monkeypatch.setattr(cal, "BUDGETS", (256,))
    monkeypatch.setattr(cal, "MEASURE_BUDGET", 256)
    req = PredictRequest(texts=["The capital of France is"], model=str(tiny_llama_dir),
                         task="generator", max_new_tokens=3)  # fmt: skip
    res = run(req, ServiceContext())
    assert len(res.predictions) == 1 and res.predictions[0]["text"] == "The capital of France is"
    entry = next(iter(json.loads(cal.cache_path().read_text()).values()))
    assert entry["plan"]["source"] == "measured"
