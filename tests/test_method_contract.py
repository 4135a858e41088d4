"""The one method contract: a method written in one file works for classification and generation
(API, CLI, web API, store), typed parameter schemas, refused method/target pairs, diagnostics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from explainlm.attribution import explain
from explainlm.configurable import Param
from explainlm.engine import Attribution
from explainlm.errors import UserError
from explainlm.explanation import ExplanationSet
from explainlm.generation import GenerationSet, explain_generation
from explainlm.methods import METHODS, Method, get_method
from explainlm.models import Generator, make_task
from explainlm.store import open_store

TEXTS = ["a wonderful , touching film", "dull and boring"]
PROMPT = "a wonderful , touching film"


@pytest.fixture(scope="module")
def bert_clf(tiny_bert):
    return make_task(tiny_bert)


@pytest.fixture(scope="module")
def gen(tiny_llama) -> Generator:
    return Generator(tiny_llama, chat=False)


@pytest.fixture
def toy() -> Iterator[type[Method]]:
    """A method defined in one place (here), registered with the decorator, edited nowhere else."""

    @METHODS.register()
    class ScaledOcclusion(Method):
        """score_j = factor × (f(x) − f(x without feature j))."""

        name = "toy_scaled_occlusion"
        schema = {"factor": Param(0.5, float, gt=0, help="scale of the leave-one-out effect")}
        requires = ("masks",)

        def compute(self, engine, items, granularity):
            masks = [~np.eye(engine.feature_count(it, granularity), dtype=bool) for it in items]
            values = engine.score_masks(items, masks, granularity)
            f = float(self.params["factor"])
            return [
                Attribution(f * (engine.full_values(it)[None, :] - v).T)
                for it, v in zip(items, values, strict=True)
            ]

    yield ScaledOcclusion
    METHODS._entries.pop("toy_scaled_occlusion")  # keep the registry as other tests expect it


def naive_logprobs(w, prompt_ids: list[int], cont: list[int]) -> np.ndarray:
    ids = torch.tensor([prompt_ids + cont])
    with torch.no_grad():
        logp = torch.log_softmax(w.model(input_ids=ids).logits[0].float(), -1)
    n = len(prompt_ids)
    return np.array([float(logp[n - 1 + k, t]) for k, t in enumerate(cont)])


def test_toy_method_explains_a_classifier(toy, bert_clf) -> None:
    res = explain(TEXTS, bert_clf, [toy.name], method_params={toy.name: {"factor": 2.0}})
    for text, e in zip(TEXTS, res, strict=True):
        words = text.split(" ")
        p = bert_clf.predict([text])[0].probs[e.label]
        reduced = [" ".join(words[:j] + words[j + 1 :]) for j in range(len(words))]
        expected = [2.0 * (p - r.probs[e.label]) for r in bert_clf.predict(reduced)]
        np.testing.assert_allclose(e.word_scores, expected, atol=1e-5)
        assert e.method == toy.name and e.check is not None


def test_toy_method_explains_generation(toy, gen) -> None:
    w = gen.wrapper
    a = explain_generation([PROMPT], gen, [toy.name], max_new_tokens=3)[0]
    g = gen.generate([PROMPT], max_new_tokens=3)[0]
    words = PROMPT.split(" ")
    tok = w.tokenizer
    full = naive_logprobs(w, tok(PROMPT)["input_ids"], g.token_ids)
    for j in range(len(words)):
        reduced = " ".join(words[:j] + words[j + 1 :])
        lp = naive_logprobs(w, tok(reduced)["input_ids"], g.token_ids)
        np.testing.assert_allclose([r[j] for r in a.matrix], 0.5 * (full - lp), atol=1e-4)
    for k in range(2):  # generated token k left out of the context of the later ones
        lp = naive_logprobs(w, tok(PROMPT)["input_ids"], g.token_ids[:k] + g.token_ids[k + 1 :])
        for i in range(3):
            cell = a.matrix[i][len(words) + k]
            assert (
                cell is None
                if i <= k
                else cell == pytest.approx(0.5 * (full[i] - lp[i - 1]), abs=1e-4)
            )


def test_toy_method_in_cli_store_and_web_api(
    toy, tiny_bert_dir: Path, tiny_llama_dir, capsys
) -> None:
    from explainlm.cli.app import main

    code = main(
        ["explain", TEXTS[0], "--model", str(tiny_bert_dir), "--method", toy.name, "--json"]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    e = doc["explanations"][0]
    assert e["method"] == toy.name and e["check"]["comprehensiveness"] is not None
    stored = open_store().load_explanations(doc["run_id"])
    assert stored[0].method == toy.name and stored[0].scores == pytest.approx(e["scores"])
    assert main(["explain", TEXTS[0], "--model", str(tiny_bert_dir), "--method", toy.name,
                 "--param", f"{toy.name}.factor=0"]) == 2  # fmt: skip

    from fastapi.testclient import TestClient

    from explainlm.server import ModelSpec, ServerConfig, create_app

    models = [
        ModelSpec("tiny-bert", str(tiny_bert_dir)),
        ModelSpec("tiny-llama", str(tiny_llama_dir)),
    ]
    with TestClient(create_app(ServerConfig(models=models)), base_url="http://localhost") as client:
        r = client.post("/api/explain", json={"text": TEXTS[0], "methods": [toy.name]})
        assert r.status_code == 200, r.text
        web = r.json()["explanations"][0]
        assert web["method"] == toy.name and web["scores"] == pytest.approx(e["scores"], abs=1e-6)


def test_unsupported_pairs_are_refused_before_any_work(gen, bert_clf) -> None:
    with pytest.raises(UserError, match="whole-sequence"):
        explain_generation([PROMPT], gen, ["attention"], target="sequence_logprob")

    class Legacy(Method):  # the earlier contract: dicts of scores, classifiers only
        name = "legacy_toy"

        def _attribute(self, engine, items, granularity):
            return [{"word_scores": np.ones(len(it.encoding.word_spans))} for it in items]

    from explainlm.generation import GenerationEngine
    from explainlm.targets import GenerationTarget

    engine = GenerationEngine(gen, GenerationTarget())
    with pytest.raises(UserError, match="implement compute"):
        engine.check_method(Legacy())
    assert engine.passes == 0
    from explainlm.engine import Engine

    e = Legacy().attribute(Engine(bert_clf), Engine(bert_clf).prepare(TEXTS[:1]))[0]
    assert e.word_scores == [1.0] * 5  # still served for classifiers


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("lime", {"n_samples": "abc"}, "lime.n_samples must be an integer ≥ 2, got 'abc'"),
        ("lime", {"n_samples": 0}, "lime.n_samples must be an integer ≥ 2, got 0"),
        ("lime", {"n_samples": -5}, "lime.n_samples must be an integer ≥ 2, got -5"),
        ("lime", {"n_samples": 2.5}, "lime.n_samples must be an integer ≥ 2, got 2.5"),
        ("lime", {"kernel_width": 0}, "lime.kernel_width must be a number > 0, got 0"),
        ("occlusion", {"replace": "zap"}, "occlusion.replace must be one of remove, mask, pad"),
        ("integrated_gradients", {"steps": True}, "integrated_gradients.steps must be an integer"),
        (
            "attention",
            {"layer": "first"},
            "attention.layer must be one of last, mean or an integer",
        ),
        ("kernel_shap", {"n_samples": 3}, "kernel_shap.n_samples must be an integer ≥ 4 or null"),
    ],
)
def test_parameter_schema_validates(method: str, params: dict, message: str) -> None:
    with pytest.raises(UserError) as err:
        get_method(method, **params)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_parameter_schema_is_json_and_matches_defaults() -> None:
    for name, cls in METHODS.items():
        schema = json.loads(json.dumps(cls.param_schema()))
        assert schema["title"] == name and schema["additionalProperties"] is False
        defaults = {k: v["default"] for k, v in schema["properties"].items()}
        assert defaults == json.loads(json.dumps(get_method(name).params))
    # values that mean the same are accepted and normalised
    assert get_method("lime", n_samples=200.0, kernel_width="2").params["n_samples"] == 200
    assert get_method("attention", layer=-1).params["layer"] == -1


def test_diagnostics_are_kept_and_round_trip(bert_clf, gen, tmp_path: Path) -> None:
    res = explain(
        [TEXTS[0]],
        bert_clf,
        ["lime", "kernel_shap", "integrated_gradients"],
        method_params={"lime": {"n_samples": 300}, "integrated_gradients": {"steps": 8}},
    )
    lime, shap, ig = res
    assert 0.0 <= lime.diagnostics["r2"] <= 1.0 and lime.diagnostics["n_samples"] == 300
    assert shap.diagnostics == {"exact": True, "n_coalitions": 2**5, "precision": "fp32"}
    assert ig.diagnostics["delta"] == ig.delta
    res.save(tmp_path / "e.json")
    back = ExplanationSet.load(tmp_path / "e.json")
    assert [e.diagnostics for e in back] == [e.diagnostics for e in res]
    assert [e.check for e in back] == [e.check for e in res]
    store = open_store()
    run_id = store.start_run("explain", params={})
    store.add_explanations(run_id, res)
    assert [e.to_dict() for e in store.load_explanations(run_id)] == [e.to_dict() for e in res]

    ga = explain_generation(
        [PROMPT],
        gen,
        ["lime", "kernel_shap"],
        max_new_tokens=2,
        method_params={"lime": {"n_samples": 50}},
    )
    assert len(ga[0].diagnostics["r2"]) == 2 and ga[1].diagnostics["exact"] is True
    ga.save(tmp_path / "g.json")
    assert [a.to_dict() for a in GenerationSet.load(tmp_path / "g.json")] == [
        a.to_dict() for a in ga
    ]
