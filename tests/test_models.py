"""The model wrapper and the classification task kinds, on tiny random models."""

from __future__ import annotations

import pytest
import torch

from explainlm.errors import UnknownLabelError, UnknownModelError, UserError
from explainlm.models import ModelWrapper, SequenceClassifier, ZeroShotClassifier, make_task
from explainlm.models.batching import token_budget_batches
from explainlm.models.sources import resolve_source

TEXTS = ["short", "a somewhat longer text for padding", "the third, medium text"]


def test_padding_sides(tiny_bert, tiny_llama) -> None:
    assert tiny_bert.padding_side == "right" and tiny_llama.padding_side == "left"
    b = tiny_llama.collate(tiny_llama.encode(TEXTS))
    first = b.attention_mask[0]
    assert first[0] == 0 and first[-1] == 1  # left padded
    assert int(b.position_ids[0, -1]) == len(b.encodings[0]) - 1  # positions count real tokens only
    assert b.positions(0)[-1] == b.input_ids.shape[1] - 1


@pytest.mark.parametrize("which", ["tiny_bert", "tiny_llama"])
def test_batched_forward_equals_single(which: str, request: pytest.FixtureRequest) -> None:
    w: ModelWrapper = request.getfixturevalue(which)
    encs = w.encode(TEXTS)
    with torch.no_grad():
        batched = w.forward(w.collate(encs)).logits
        for i, e in enumerate(encs):
            single = w.forward(w.collate([e])).logits[0]
            row = batched[i, w.collate(encs).positions(i)] if w.is_decoder else batched[i]
            torch.testing.assert_close(row, single, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("which", ["tiny_bert", "tiny_llama"])
def test_forward_from_embeddings_equals_ids(which: str, request: pytest.FixtureRequest) -> None:
    w: ModelWrapper = request.getfixturevalue(which)
    b = w.collate(w.encode(TEXTS))
    with torch.no_grad():
        a = w.forward(b).logits
        e = w.forward(b, inputs_embeds=w.embed(b.input_ids)).logits
    torch.testing.assert_close(a, e)
    assert w.embedding_layer.weight.shape[0] >= len(w.tokenizer) - 1


def test_sequence_classifier_predict(tiny_bert) -> None:
    clf = make_task(tiny_bert)
    assert isinstance(clf, SequenceClassifier) and clf.labels == ["negative", "positive"]
    preds = clf.predict(TEXTS)
    with torch.no_grad():
        logits = tiny_bert.model(**tiny_bert.tokenizer(TEXTS[0], return_tensors="pt")).logits[0]
    probs = torch.softmax(logits, -1)
    assert preds[0].probs["positive"] == pytest.approx(float(probs[1]), abs=1e-5)
    assert all(abs(sum(p.probs.values()) - 1) < 1e-5 for p in preds)
    assert preds[1].label == max(preds[1].probs, key=preds[1].probs.get)


def manual_verbalizer_logprob(w: ModelWrapper, prompt: str, verbalizer: str) -> float:
    tok = w.tokenizer
    p = tok(prompt, add_special_tokens=True)["input_ids"]
    v = tok(verbalizer, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + v])
    with torch.no_grad():
        logp = torch.log_softmax(w.model(input_ids=ids).logits[0].float(), -1)
    return float(sum(logp[len(p) - 1 + k, t] for k, t in enumerate(v)))


def test_zero_shot_single_and_multi_token_verbalizers(tiny_llama) -> None:
    template = "Review: {text}\nSentiment:"
    single = ZeroShotClassifier(tiny_llama, ["negative", "positive"], template)
    assert single.single_token
    multi = ZeroShotClassifier(
        tiny_llama,
        ["negative", "positive"],
        template,
        verbalizers=[" utterly dreadful", " positive"],
    )
    assert not multi.single_token
    encs = multi.encode(TEXTS)
    scores = multi.scores(encs)
    for i, t in enumerate(TEXTS):
        prompt = template.replace("{text}", t)
        for j, v in enumerate(multi.verbalizers):
            assert float(scores[i, j]) == pytest.approx(
                manual_verbalizer_logprob(tiny_llama, prompt, v), abs=1e-4
            )
    s1 = single.scores(single.encode(TEXTS))
    torch.testing.assert_close(s1[:, 1], scores[:, 1], atol=1e-4, rtol=1e-4)  # same verbalizer


def test_zero_shot_calibration_subtracts_content_free_logprobs(tiny_llama) -> None:
    raw = ZeroShotClassifier(tiny_llama)
    cal = ZeroShotClassifier(tiny_llama, calibrate=True)
    assert cal.calibrated and cal.bias.abs().sum() > 0
    cf = torch.log_softmax(raw.scores(raw.encode(["N/A", "[MASK]", "nothing"])), -1).mean(0)
    torch.testing.assert_close(cal.bias, cf)
    torch.testing.assert_close(cal.scores(cal.encode(TEXTS)), raw.scores(raw.encode(TEXTS)) - cf)


def test_truncation_and_no_truncate(tiny_bert) -> None:
    long = " ".join(["word"] * 400)
    enc = tiny_bert.encode([long])[0]
    assert enc.truncated and len(enc) <= tiny_bert.max_length and enc.warnings
    assert enc.input_ids[-1] == tiny_bert.tokenizer.sep_token_id  # special tokens kept
    with pytest.raises(UserError, match="over the model's limit"):
        tiny_bert.encode([long], truncation=False)
    pred = make_task(tiny_bert).predict([long])[0]
    assert pred.warnings and "truncated" in pred.warnings[0]


def test_truncation_keeps_template(tiny_llama) -> None:
    clf = ZeroShotClassifier(tiny_llama)
    long = " ".join(["great"] * 400)
    enc = clf.encode([long])[0]
    assert enc.truncated and len(enc) <= tiny_llama.max_length
    assert enc.sequence.endswith("\nSentiment:")


def test_bad_inputs(tiny_bert, tiny_llama) -> None:
    with pytest.raises(UserError, match="empty"):
        tiny_bert.encode(["  "])
    clf = make_task(tiny_bert)
    with pytest.raises(UnknownLabelError, match="negative, positive"):
        clf.label_index("neutral")
    with pytest.raises(UserError, match="causal LM"):
        make_task(tiny_bert, "zero_shot")
    with pytest.raises(UserError, match="not a sequence classifier"):
        make_task(tiny_llama, "sequence_classifier")
    with pytest.raises(UserError, match="unknown task"):
        make_task(tiny_llama, "translate")
    with pytest.raises(UserError, match=r"\{text\}"):
        tiny_llama.encode(["x"], template="no slot")


def test_unknown_model_names() -> None:
    with pytest.raises(UnknownModelError, match="smollm2-135m, minilm-l6"):
        resolve_source("gpt-17")
    with pytest.raises(UnknownModelError):
        resolve_source("./no/such/dir")
    with pytest.raises(UserError):
        resolve_source("")


def test_hub_id_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UnknownModelError, match="could not be fetched"):
        resolve_source("some-org/some-model-that-does-not-exist")


def test_local_dir_without_config(tmp_path) -> None:
    with pytest.raises(UserError, match="no config.json"):
        resolve_source(str(tmp_path))


def test_token_budget_batches_cover_all_and_respect_budget() -> None:
    lengths = [5, 40, 3, 17, 17, 90, 2]
    batches = list(token_budget_batches(lengths, max_batch_tokens=64, multiplier=1))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 64
