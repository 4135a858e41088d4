"""Targets: the scalar a prediction is explained by, named and reusable.

Classification targets act on the class scores ``[batch, classes]`` of any classifier (a sequence
classifier's logits, or a zero-shot LLM classifier's summed verbalizer log-probs):

| name | value for label *c* |
| --- | --- |
| ``logit`` | the class score s_c |
| ``prob`` | softmax(s)_c |
| ``log_odds`` | log p_c − log(1 − p_c) |
| ``contrast`` | s_c − s_foil (logit difference; "why *c* rather than *foil*") |

Generation targets act on a causal LM's log-probs of generated tokens: ``token_logprob`` (log p of
each generated token), ``token_prob``, ``sequence_logprob`` (sum over the continuation), and
``contrast`` (log p(target) − log p(foil)).

>>> t = parse_target("contrast:positive:negative")
>>> t.kind, t.label, t.foil
('contrast', 'positive', 'negative')
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explainlm.errors import UnknownLabelError, UserError

CLASS_TARGETS = ("logit", "prob", "log_odds", "contrast")
GENERATION_TARGETS = ("token_logprob", "token_prob", "sequence_logprob", "contrast")


@dataclass(frozen=True)
class ClassTarget:
    """A classification target; ``label=None`` means the predicted label of each example."""

    kind: str = "prob"
    label: str | None = None
    foil: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in CLASS_TARGETS:
            raise UserError(f"unknown target {self.kind!r}; known: {', '.join(CLASS_TARGETS)}")
        if self.kind == "contrast" and self.foil is None:
            raise UserError("a contrast target needs two labels, e.g. contrast:positive:negative")

    @property
    def name(self) -> str:
        if self.kind == "contrast":
            return f"contrast:{self.label or 'predicted'}:{self.foil}"
        return f"{self.kind}:{self.label}" if self.label else self.kind

    def indices(
        self, labels: list[str], scores: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Label index (and foil index) per example; the argmax when no label is fixed."""
        n = scores.shape[0]
        if self.label is None:
            idx = scores.argmax(-1)
        else:
            idx = torch.full((n,), label_index(labels, self.label), device=scores.device)
        foil = None
        if self.foil is not None:
            foil = torch.full((n,), label_index(labels, self.foil), device=scores.device)
        return idx, foil

    def value(
        self, scores: torch.Tensor, idx: torch.Tensor, foil: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The target's value per example, differentiable in ``scores``."""
        pick = scores.gather(-1, idx.view(-1, 1)).squeeze(-1)
        if self.kind == "logit":
            return pick
        if self.kind == "contrast":
            assert foil is not None
            return pick - scores.gather(-1, foil.view(-1, 1)).squeeze(-1)
        logp = torch.log_softmax(scores, -1).gather(-1, idx.view(-1, 1)).squeeze(-1)
        if self.kind == "prob":
            return logp.exp()
        # log-odds: log p - log(1 - p), computed stably from the other classes' log-sum-exp
        others = scores.masked_fill(
            torch.nn.functional.one_hot(idx, scores.shape[-1]).bool(), float("-inf")
        )
        return logp - (torch.logsumexp(others, -1) - torch.logsumexp(scores, -1))


@dataclass(frozen=True)
class GenerationTarget:
    """A target on generated tokens; ``foil`` is a text for contrastive targets."""

    kind: str = "token_logprob"
    foil: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in GENERATION_TARGETS:
            raise UserError(f"unknown target {self.kind!r}; known: {', '.join(GENERATION_TARGETS)}")
        if self.kind == "contrast" and not self.foil:
            raise UserError("a contrastive generation target needs a foil text")

    @property
    def name(self) -> str:
        return f"contrast:{self.foil}" if self.kind == "contrast" else self.kind

    def value(
        self, logprobs: torch.Tensor, foil_logprobs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """From per-token log-probs ``[batch, n_generated]`` to the target per token (or per sequence)."""
        if self.kind == "token_logprob":
            return logprobs
        if self.kind == "token_prob":
            return logprobs.exp()
        if self.kind == "sequence_logprob":
            return logprobs.sum(-1, keepdim=True)
        assert foil_logprobs is not None
        return logprobs - foil_logprobs


def label_index(labels: list[str], label: str) -> int:
    """Index of ``label`` (case-insensitive), with a clear error listing the model's labels."""
    for i, name in enumerate(labels):
        if name == label:
            return i
    lowered = [name.lower() for name in labels]
    if label.lower() in lowered:
        return lowered.index(label.lower())
    raise UnknownLabelError(f"unknown label {label!r}; the model's labels are: {', '.join(labels)}")


def parse_target(spec: str | None, *, contrast: str | None = None) -> ClassTarget:
    """Parse ``"prob"``, ``"logit:positive"``, ``"contrast:positive:negative"`` or a bare label.

    ``contrast="a:b"`` (the CLI's ``--contrast``) gives a contrast target.
    """
    if contrast:
        parts = contrast.split(":")
        if len(parts) != 2 or not all(parts):
            raise UserError(f"--contrast takes LABEL:FOIL, got {contrast!r}")
        return ClassTarget("contrast", parts[0], parts[1])
    if not spec:
        return ClassTarget()
    parts = spec.split(":")
    if parts[0] in CLASS_TARGETS:
        if parts[0] == "contrast":
            if len(parts) != 3:
                raise UserError("contrast targets are written contrast:LABEL:FOIL")
            return ClassTarget("contrast", parts[1], parts[2])
        return ClassTarget(parts[0], parts[1] if len(parts) > 1 and parts[1] else None)
    return ClassTarget("prob", spec)  # a bare label: its probability
