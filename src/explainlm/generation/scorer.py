"""Next-token prediction as a classifier over the vocabulary.

With this view every generated token is one engine item: its encoding is the context (prompt and
the tokens generated before it), its "label" is the generated token's id and its class scores are
log-probabilities, so the classification targets read as generation targets:
``logit`` = log p(token), ``prob`` = p(token), ``contrast`` = log p(token) − log p(foil).
Gradient and attention methods then run unchanged through the shared engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from explainlm.models.classifiers import Classifier
from explainlm.models.wrapper import Batch, Encoding, ModelWrapper
from explainlm.targets import ClassTarget, GenerationTarget


class NextTokenScorer(Classifier):
    """Class scores = log p(next token | context) over the whole vocabulary."""

    task = "next_token"

    def __init__(self, wrapper: ModelWrapper) -> None:
        size = int(wrapper.model.get_output_embeddings().weight.shape[0])
        tok = wrapper.tokenizer
        names = tok.convert_ids_to_tokens(list(range(min(size, len(tok)))))
        names += [f"<id {i}>" for i in range(len(names), size)]
        super().__init__(wrapper, [n if n is not None else "" for n in names])

    def class_scores(self, batch: Batch, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        out = self.wrapper.forward(batch, inputs_embeds=inputs_embeds, logits_to_keep=1)
        return torch.log_softmax(out.logits[:, -1].float(), -1)


def class_target_for(target: GenerationTarget) -> ClassTarget:
    """The classification target on log-prob scores that equals a per-token generation target."""
    kind = {"token_logprob": "logit", "token_prob": "prob", "contrast": "contrast"}.get(target.kind)
    if kind is None:  # sequence_logprob: a sum of token_logprob rows (linear methods only)
        kind = "logit"
    return ClassTarget(kind, None, "foil" if kind == "contrast" else None)


def extend(encoding: Encoding, ids: Sequence[int], tokens: Sequence[str]) -> Encoding:
    """The prompt's encoding followed by generated tokens (not special, in no prompt word)."""
    k = len(ids)
    return Encoding(
        text=encoding.text,
        sequence=encoding.sequence,
        input_ids=list(encoding.input_ids) + list(ids),
        tokens=list(encoding.tokens) + list(tokens),
        offsets=list(encoding.offsets) + [None] * k,
        special=list(encoding.special) + [False] * k,
        word_ids=list(encoding.word_ids) + [-1] * k,
        word_spans=list(encoding.word_spans),
        truncated=encoding.truncated,
        warnings=list(encoding.warnings),
    )
