"""Classifiers: a fine-tuned sequence classifier, or a zero-shot classifier built on a causal LM.

Both expose ``class_scores(batch, inputs_embeds=None) -> [batch, classes]``, differentiable in the
input embeddings: prediction, targets and every explanation method go through it.

>>> from explainlm.models import load_model
>>> clf = load_model("smollm2-135m")                                  # doctest: +SKIP
>>> clf.predict(["A wonderful, touching film."])[0].label            # doctest: +SKIP
'positive'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS, token_budget_batches
from explainlm.models.wrapper import Batch, Encoding, ModelWrapper
from explainlm.progress import Progress
from explainlm.targets import label_index

DEFAULT_SENTIMENT_TEMPLATE = "Review: {text}\nSentiment:"
DEFAULT_SENTIMENT_LABELS = ("negative", "positive")
CONTENT_FREE_INPUTS = ("N/A", "[MASK]", "nothing")

# wraps one forward pass: (rows, padded tokens) -> a context manager
PassWrapper = Callable[[int, int], AbstractContextManager[Any]]


@dataclass
class Prediction:
    """One prediction: label, probability per label, raw class scores, and warnings."""

    text: str
    label: str
    probs: dict[str, float]
    scores: list[float]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text, "label": self.label, "probs": self.probs}
        if self.warnings:
            d["warnings"] = self.warnings
        return d


class Classifier:
    """Common interface of the classification task kinds."""

    task = "classifier"

    def __init__(self, wrapper: ModelWrapper, labels: Sequence[str]) -> None:
        if len(labels) < 2:
            raise UserError("a classifier needs at least two labels")
        self.wrapper = wrapper
        self.labels = list(labels)

    @property
    def name(self) -> str:
        return self.wrapper.name

    def label_index(self, label: str) -> int:
        return label_index(self.labels, label)

    def encode(
        self, texts: Sequence[str], truncation: bool = True, allow_empty: bool = False
    ) -> list[Encoding]:
        return self.wrapper.encode(texts, truncation=truncation, allow_empty=allow_empty)

    def class_scores(self, batch: Batch, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def rows_per_item(self) -> int:
        """How many model rows one text becomes in :meth:`class_scores` (for batch budgets)."""
        return 1

    @torch.no_grad()
    def scores(
        self,
        encodings: Sequence[Encoding],
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        *,
        wrap: PassWrapper | None = None,
    ) -> torch.Tensor:
        """Class scores ``[n, classes]`` for many encodings, batched by length under a token budget.

        The one batched prediction loop: prediction, calibration and the explanation engine all run
        their forward passes here. ``wrap(rows, tokens)`` returns a context manager around each pass
        (the engine uses it for mixed precision, pass counting and progress).
        """
        out = torch.empty(len(encodings), len(self.labels))
        mult = self.rows_per_item()
        for idx in token_budget_batches(
            [len(e) for e in encodings], max_batch_tokens, multiplier=mult
        ):
            batch = self.wrapper.collate([encodings[i] for i in idx])
            with wrap(len(idx), batch.input_ids.numel() * mult) if wrap else nullcontext():
                out[idx] = self.class_scores(batch).float().cpu()
        return out

    def predict(
        self,
        texts: Sequence[str],
        *,
        truncation: bool = True,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        progress: Progress | None = None,
    ) -> list[Prediction]:
        """Labels and per-label probabilities for ``texts`` (batched under the token budget).

        ``progress`` (optional) gets a "predicting" stage advanced by the texts of each pass.
        """
        encodings = self.encode(texts, truncation=truncation)
        wrap = None
        if progress is not None:
            progress.start("predicting", total=len(encodings))
            wrap = _advancing(progress)
        scores = self.scores(encodings, max_batch_tokens, wrap=wrap)
        if progress is not None:
            progress.close()
        probs = torch.softmax(scores, -1)
        return [
            Prediction(
                e.text,
                self.labels[int(p.argmax())],
                {lab: float(v) for lab, v in zip(self.labels, p, strict=True)},
                [float(v) for v in s],
                list(e.warnings),
            )
            for e, s, p in zip(encodings, scores, probs, strict=True)
        ]

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.name, "labels": self.labels}


def _advancing(progress: Progress) -> PassWrapper:
    @contextmanager
    def wrap(rows: int, tokens: int) -> Iterator[None]:
        yield
        progress.advance(rows)

    return wrap


class SequenceClassifier(Classifier):
    """Any ``*ForSequenceClassification`` model; class scores are its logits."""

    task = "sequence_classifier"

    def __init__(self, wrapper: ModelWrapper, labels: Sequence[str] | None = None) -> None:
        if wrapper.kind != "sequence_classifier":
            raise UserError(
                f"{wrapper.name} is not a sequence classifier (it is a {wrapper.kind}); "
                "train one with `explainlm train`, or use a causal LM as a zero-shot classifier"
            )
        id2label = getattr(wrapper.model.config, "id2label", None) or {}
        default = [
            str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}")))
            for i in range(wrapper.model.config.num_labels)
        ]
        if labels and len(labels) != len(default):
            raise UserError(
                f"{wrapper.name} has {len(default)} labels ({', '.join(default)}); "
                f"got {len(labels)} names: {', '.join(labels)}"
            )
        super().__init__(wrapper, list(labels) if labels else default)

    def class_scores(self, batch: Batch, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        return self.wrapper.forward(batch, inputs_embeds=inputs_embeds).logits


class ZeroShotClassifier(Classifier):
    """A causal LM as a classifier: a prompt template and one verbalizer per label.

    A label's score is the summed log-probability of its verbalizer tokens after the prompt
    (multi-token verbalizers score as summed log-probs). With ``calibrate=True`` the scores are
    contextually calibrated (Zhao et al., 2021): the mean log-probabilities that content-free
    inputs (``"N/A"``, ``"[MASK]"``, ``"nothing"``) get are subtracted.
    """

    task = "zero_shot"

    def __init__(
        self,
        wrapper: ModelWrapper,
        labels: Sequence[str] = DEFAULT_SENTIMENT_LABELS,
        template: str = DEFAULT_SENTIMENT_TEMPLATE,
        verbalizers: Sequence[str] | None = None,
        *,
        chat: bool = False,
        calibrate: bool = False,
    ) -> None:
        if not wrapper.is_decoder:
            raise UserError(
                f"zero-shot classification needs a causal LM; {wrapper.name} is a {wrapper.kind}"
            )
        super().__init__(wrapper, labels)
        self.template = template
        self.chat = chat
        self.verbalizers = list(verbalizers) if verbalizers else [" " + lab for lab in self.labels]
        if len(self.verbalizers) != len(self.labels):
            raise UserError("give one verbalizer per label")
        tok = wrapper.tokenizer
        self.verbalizer_ids = [
            tok(v, add_special_tokens=False)["input_ids"] for v in self.verbalizers
        ]
        if any(len(v) == 0 for v in self.verbalizer_ids):
            raise UserError("a verbalizer tokenizes to nothing")
        self.single_token = all(len(v) == 1 for v in self.verbalizer_ids)
        self.bias = torch.zeros(len(self.labels))
        self.calibrated = False
        if calibrate:
            self.calibrate()

    def encode(
        self, texts: Sequence[str], truncation: bool = True, allow_empty: bool = False
    ) -> list[Encoding]:
        return self.wrapper.encode(
            texts,
            template=self.template,
            chat=self.chat,
            truncation=truncation,
            allow_empty=allow_empty,
        )

    def rows_per_item(self) -> int:
        return 1 if self.single_token else len(self.labels)

    def calibrate(self, content_free: Sequence[str] = CONTENT_FREE_INPUTS) -> None:
        """Contextual calibration: subtract the mean log-probs of content-free inputs."""
        self.bias = torch.zeros(len(self.labels))
        raw = self.scores(self.encode(list(content_free)))
        self.bias = torch.log_softmax(raw, -1).mean(0)
        self.calibrated = True

    def class_scores(self, batch: Batch, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        w = self.wrapper
        if inputs_embeds is None:
            inputs_embeds = w.embed(batch.input_ids)
        bias = self.bias.to(inputs_embeds.device, torch.float32)  # scores in float32 always
        if self.single_token:
            # only the last position's logits are needed (left padding puts every text's end there)
            logits = w.forward(batch, inputs_embeds=inputs_embeds, logits_to_keep=1).logits[:, -1]
            ids = torch.tensor([v[0] for v in self.verbalizer_ids], device=logits.device)
            return torch.log_softmax(logits.float(), -1)[:, ids] - bias
        # Multi-token verbalizers: one row per (text, label), prompt then verbalizer on the right.
        n, c = inputs_embeds.shape[0], len(self.labels)
        width = max(len(v) for v in self.verbalizer_ids)
        verb = torch.full((c, width), w.pad_token_id, dtype=torch.long, device=w.device)
        vmask = torch.zeros((c, width), dtype=torch.long, device=w.device)
        for j, v in enumerate(self.verbalizer_ids):
            verb[j, : len(v)] = torch.tensor(v)
            vmask[j, : len(v)] = 1
        emb = torch.cat(
            [inputs_embeds.repeat_interleave(c, 0), w.embed(verb).repeat(n, 1, 1)], dim=1
        )
        mask = torch.cat([batch.attention_mask.repeat_interleave(c, 0), vmask.repeat(n, 1)], dim=1)
        logits = w.forward(inputs_embeds=emb, attention_mask=mask).logits.float()
        t = batch.input_ids.shape[1]
        logp = torch.log_softmax(logits[:, t - 1 : t - 1 + width], -1)
        picked = logp.gather(-1, verb.repeat(n, 1).unsqueeze(-1)).squeeze(-1)
        total = (picked * vmask.repeat(n, 1)).sum(-1).view(n, c)
        return total - bias

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "template": self.template,
            "verbalizers": self.verbalizers,
            "chat": self.chat,
            "calibrated": self.calibrated,
        }
