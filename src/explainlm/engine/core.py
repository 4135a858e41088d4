"""One engine for every method: batched forward/backward passes from input embeddings, batched
scoring of perturbed texts and token variants, and attention maps.

Methods never run their own model loops: they say *what* to evaluate (embedding rows, keep-masks,
token variants) and the engine packs the work of all queued texts into as few passes as the token
budget (``max_batch_tokens``, counted as rows × padded length) allows. Every pass is counted
(``passes``) and reported to the engine's :class:`~explainlm.progress.Progress`, with an up-front
time estimate from the throughput measured on earlier passes.

>>> from explainlm.models import load_model
>>> engine = Engine(load_model("smollm2-135m"))            # doctest: +SKIP
>>> items = engine.prepare(["A wonderful film."])           # doctest: +SKIP
>>> engine.predicted_label(items[0])                         # doctest: +SKIP
'positive'
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from explainlm.engine.classification import ClassificationContract
from explainlm.engine.continuation import ContinuationScoring
from explainlm.engine.contract import item_torch_generator
from explainlm.engine.prefix import class_scores_reusing_prefixes
from explainlm.models.autotune import resolve_precision
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS, token_budget_batches
from explainlm.models.precision import (
    PrecisionPlan,
    model_kind,
    pass_context,
    settle_close_calls,
    variant_task,
)
from explainlm.models.wrapper import Batch, Encoding, eager_attention
from explainlm.progress import Progress, as_progress
from explainlm.targets import ClassTarget

if TYPE_CHECKING:
    from explainlm.models.classifiers import Classifier

RowsFn = Callable[["Item", torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
ReduceFn = Callable[["Item", torch.Tensor, torch.Tensor, torch.Tensor], Any]
BACKWARD_COST = 3.0  # a forward + backward pass costs about three forwards


@dataclass
class Item:
    """A text queued for explanation: its encoding, prediction and resolved target."""

    index: int
    encoding: Encoding
    scores: torch.Tensor  # class scores [C]
    label_idx: int
    foil_idx: int | None
    target_value: float
    key: str = ""  # identity (text, tokens, target): seeds derive from it, never from ``index``

    @property
    def text(self) -> str:
        return self.encoding.text

    @property
    def predicted(self) -> int:
        return int(self.scores.argmax())


class Engine(ClassificationContract, ContinuationScoring):
    """Batched passes over a classifier for a fixed target definition.

    ``progress``: a :class:`~explainlm.progress.Progress` (``True``: a terminal bar) that every
    pass advances. ``reuse_scores``: remember the target value of every keep-mask scored, so
    that methods and the faithfulness check on the same texts share passes.

    ``precision`` (``fp32``, ``bf16``, ``int8``, ``auto`` or a resolved
    :class:`~explainlm.models.precision.PrecisionPlan`): forward passes (prediction, perturbations)
    run on the plan's forward variant of the model, gradient passes on its gradient variant; the
    input embeddings the gradient methods differentiate stay float32. ``max_batch_tokens=None``:
    the plan's measured pass size (else the default). ``mixed_precision=True`` is the earlier
    spelling of ``precision=PrecisionPlan("bf16", "bf16", "autocast")``.
    """

    kind = "classification"

    def __init__(
        self,
        classifier: Classifier,
        target: ClassTarget | None = None,
        *,
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
        progress: Progress | bool | None = False,
        mixed_precision: bool = False,
        reuse_scores: bool = False,
        precision: str | PrecisionPlan = "fp32",
    ) -> None:
        self.classifier = classifier
        self.wrapper = classifier.wrapper
        self.target = target or ClassTarget()
        if mixed_precision:
            precision = PrecisionPlan("bf16", "bf16", "autocast", "bf16", reason="mixed_precision")
        self.precision = resolve_precision(precision, classifier)
        plan = self.precision
        self.max_batch_tokens = int(
            max_batch_tokens or plan.max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS
        )
        self.forward_batch_tokens = int(
            max_batch_tokens or plan.forward_batch_tokens or self.max_batch_tokens
        )
        self._forward_clf = variant_task(classifier, model_kind(plan, "forward"))
        self._gradient_clf = variant_task(classifier, model_kind(plan, "backward"))
        self.forward_wrapper = self._forward_clf.wrapper
        self.progress = as_progress(progress)
        self.passes = 0  # forward passes run (for tests and benchmarks)
        self.mixed_precision = mixed_precision
        self._label = ""  # what the passes are for (the method's name), shown in progress
        self._method: Any = None  # the method whose passes run now
        self._seconds_per_token: float | None = None
        self.close_calls: list[int] = []  # items whose label was decided in float32 (auto)
        self._init_contract(reuse_scores)

    def _autocast(self, backward: bool = True) -> contextlib.AbstractContextManager[Any]:
        """bfloat16 autocast when the plan runs these passes under autocast; else nothing."""
        kind = "backward" if backward else "forward"
        if backward and self._float32_gradients(self._method):
            return contextlib.nullcontext()
        return pass_context(self.precision, kind, self.wrapper.device)

    def precision_of(self, method: Any) -> str:
        """The precision a method's passes ran in: its gradient passes', else its forward passes'
        (``fp32``, ``bf16-weights``, ``bf16-autocast``, ``int8``); attention maps are float32."""
        requires = getattr(method, "requires", ())
        if "gradients" in requires:
            return "fp32" if self._float32_gradients(method) else self.precision.mode("backward")
        if "masks" in requires:
            return self.precision.mode("forward")
        return "fp32"

    # --------------------------------------------------------------- passes and progress
    @contextlib.contextmanager
    def _pass(
        self, rows: int, tokens: int, backward: bool = False, planned: bool = True
    ) -> Iterator[None]:
        """One model pass: autocast (``planned``: the plan's), counted, timed (for estimates),
        and reported as progress."""
        start = time.perf_counter()
        with self._autocast(backward) if planned else contextlib.nullcontext():
            yield
        cost = tokens * (BACKWARD_COST if backward else 1.0)
        rate = (time.perf_counter() - start) / max(cost, 1.0)
        prev = self._seconds_per_token
        self._seconds_per_token = rate if prev is None else 0.7 * prev + 0.3 * rate
        self.passes += 1
        self.progress.advance(rows)

    def _stage(self, what: str, rows: int, tokens: int, backward: bool = False) -> None:
        """Open a progress stage of ``rows`` units, estimated from the measured throughput."""
        estimate = None
        if self._seconds_per_token is not None:
            estimate = self._seconds_per_token * tokens * (BACKWARD_COST if backward else 1.0)
        name = f"{self._label}: {what}" if self._label else what
        self.progress.start(name, total=rows, estimate_s=estimate)

    @contextlib.contextmanager
    def labelled(self, label: str, method: Any = None) -> Iterator[None]:
        """Name the work done inside (progress stages read ``label: what``); ``method``: the
        method whose passes run inside (its gradient precision, see :meth:`precision_of`)."""
        previous, self._label = self._label, label
        previous_method, self._method = self._method, method
        try:
            yield
        finally:
            self._label = previous
            self._method = previous_method
            self.progress.close()

    def _float32_gradients(self, method: Any) -> bool:
        """Under ``auto``, a precision-sensitive method's gradient passes run in float32."""
        return bool(getattr(method, "precision_sensitive", False)) and (
            self.precision.requested == "auto"
        )

    # ----------------------------------------------------------------------------- items
    def prepare(self, texts: Sequence[str], *, truncation: bool = True) -> list[Item]:
        """Encode texts, predict them in batches, and resolve the target label of each."""
        return self.prepare_encodings(self.classifier.encode(texts, truncation=truncation))

    def prepare_encodings(
        self,
        encodings: Sequence[Encoding],
        labels: Sequence[int] | None = None,
        foils: Sequence[int] | None = None,
    ) -> list[Item]:
        """Items from ready encodings; ``labels``/``foils`` fix each item's target class index.

        A close call under ``auto`` gets its scores (prediction, target) from float32, while its
        target value stays the planned passes' own: the value perturbations are subtracted from."""
        self._stage("predicting", len(encodings), sum(len(e) for e in encodings))
        planned = self._scores(encodings)
        scores, self.close_calls = settle_close_calls(
            self.precision, planned, lambda rows: self._fp32_scores(encodings, rows)
        )
        idx, foil = self.target.indices(self.classifier.labels, scores)
        if labels is not None:
            idx = torch.tensor(list(labels))
        if foils is not None:
            foil = torch.tensor(list(foils))
        values = self.target.value(planned, idx, foil)
        items = [
            Item(
                i,
                e,
                scores[i],
                int(idx[i]),
                None if foil is None else int(foil[i]),
                float(values[i]),
            )
            for i, e in enumerate(encodings)
        ]
        for it in items:
            it.key = self.item_key(it)
        return items

    def predicted_label(self, item: Item) -> str:
        return self.classifier.labels[item.predicted]

    def label(self, item: Item) -> str:
        return self.classifier.labels[item.label_idx]

    def _values(self, scores: torch.Tensor, items: Sequence[Item]) -> torch.Tensor:
        dev = scores.device
        idx = torch.tensor([it.label_idx for it in items], device=dev)
        foil = None
        if self.target.kind == "contrast":
            foil = torch.tensor([it.foil_idx for it in items], device=dev)
        return self.target.value(scores, idx, foil)

    def _fp32_scores(self, encodings: Sequence[Encoding], rows: Sequence[int]) -> torch.Tensor:
        """Class scores of ``encodings[rows]`` in float32 (a close call's label, see
        :func:`~explainlm.models.precision.settle_close_calls`)."""
        wrap = functools.partial(self._pass, planned=False)
        return self.classifier.scores(
            [encodings[i] for i in rows], self.max_batch_tokens, wrap=wrap
        )

    def _scores(self, encodings: Sequence[Encoding]) -> torch.Tensor:
        """Class scores of many encodings (the classifier's batched loop, passes counted)."""
        return self._forward_clf.scores(encodings, self.forward_batch_tokens, wrap=self._pass)

    # --------------------------------------------------------------------- perturbations
    def score_encodings(
        self, items: Sequence[Item], variants: Sequence[Sequence[Encoding]]
    ) -> list[np.ndarray]:
        """Target values of every variant encoding of every item, in shared batches."""
        flat: list[Encoding] = []
        owner: list[int] = []
        for k, vs in enumerate(variants):
            flat.extend(vs)
            owner.extend([k] * len(vs))
        if not flat:
            return [np.zeros(0) for _ in items]
        scores = class_scores_reusing_prefixes(self, items, flat, owner)  # causal LMs
        if scores is None:
            self._stage("scoring variants", len(flat), sum(len(e) for e in flat))
            scores = self._scores(flat)
        values = self._values(scores, [items[k] for k in owner]).numpy()
        out, start = [], 0
        for vs in variants:
            out.append(values[start : start + len(vs)].astype(np.float64))
            start += len(vs)
        return out

    # ------------------------------------------------------------------------ gradients
    def embedding_gradients(
        self,
        items: Sequence[Item],
        n_rows: int,
        rows_fn: RowsFn,
        reduce_fn: ReduceFn,
        *,
        seed: int = 0,
    ) -> list[Any]:
        """Gradients of the target w.r.t. input embeddings, for ``n_rows`` embedding rows per item.

        ``rows_fn(item, x, special, generator)`` turns the item's embeddings ``x`` ``[T, H]`` into
        ``[n_rows, T, H]`` inputs; ``reduce_fn(item, rows, grads, values)`` turns their gradients and
        target values into the method's result. Items × rows are packed under the token budget.
        ``generator`` is seeded from ``seed`` and the item's identity (never its position).
        """
        w = self.wrapper
        results: list[Any] = [None] * len(items)
        lengths = [len(it.encoding) for it in items]
        mult = n_rows * self.classifier.rows_per_item()
        batches = list(token_budget_batches(lengths, self.max_batch_tokens, multiplier=mult))
        self._stage("gradients", len(items) * n_rows, sum(lengths) * mult, backward=True)
        for idx in batches:
            group = [items[i] for i in idx]
            batch = w.collate([it.encoding for it in group])
            with torch.no_grad():
                base = w.embed(batch.input_ids)
            rows = []
            for b, it in enumerate(group):
                cols = batch.positions(b)
                x = base[b, cols]
                special = torch.tensor(it.encoding.special, device=x.device)
                gen = item_torch_generator(seed, it.key or self.item_key(it))
                r = rows_fn(it, x, special, gen).to(base.dtype)
                full = base[b].unsqueeze(0).repeat(n_rows, 1, 1)
                full[:, cols] = r
                rows.append(full)
            embeds = torch.cat(rows).detach()
            owners = [it for it in group for _ in range(n_rows)]
            grads, values = self._grad_chunks(batch, n_rows, embeds, owners)
            for b, it in enumerate(group):
                cols = batch.positions(b)
                sl = slice(b * n_rows, (b + 1) * n_rows)
                results[idx[b]] = reduce_fn(it, embeds[sl][:, cols], grads[sl][:, cols], values[sl])
        return results

    def _grad_chunks(
        self, batch: Batch, n_rows: int, embeds: torch.Tensor, owners: Sequence[Item]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward/backward over the rows in as few chunks as the token budget allows.

        Usually one chunk; a single long text with many rows (a 1,000-token prompt × 52 integration
        points) is split so that no pass holds more than ``max_batch_tokens`` rows × tokens.
        """
        width = embeds.shape[1]
        per_row = width * self.classifier.rows_per_item()
        chunk = max(1, self.max_batch_tokens // max(per_row, 1))
        grads = torch.empty_like(embeds)
        values = torch.empty(len(owners), device=embeds.device)
        for start in range(0, len(owners), chunk):
            sl = slice(start, start + chunk)
            rows = [start + k for k in range(len(owners[sl]))]
            src = [r // n_rows for r in rows]
            part = embeds[sl].clone().requires_grad_(True)
            rep = Batch(
                [batch.encodings[b] for b in src],
                batch.input_ids[src],
                batch.attention_mask[src],
                batch.position_ids[src],
                batch.padding_side,
            )
            with self._pass(len(rows), len(rows) * per_row, backward=True):
                if self._float32_gradients(self._method):
                    scores = self.classifier.class_scores(rep, inputs_embeds=part)
                else:
                    dtype = next(self._gradient_clf.wrapper.model.parameters()).dtype
                    scores = self._gradient_clf.class_scores(rep, inputs_embeds=part.to(dtype))
                v = self._values(scores.float(), owners[sl])
                (g,) = torch.autograd.grad(v.sum(), part)
            grads[sl] = g
            values[sl] = v.detach()
        return grads, values

    # ------------------------------------------------------------------------ attention
    @torch.no_grad()
    def attentions(self, items: Sequence[Item]) -> list[torch.Tensor]:
        """Attention maps ``[layers, heads, T, T]`` of each item's own tokens (padding removed)."""
        w = self.wrapper
        out: list[torch.Tensor] = [torch.empty(0)] * len(items)
        lengths = [len(it.encoding) for it in items]
        self._stage("attention", len(items), sum(lengths))
        with eager_attention(w.model):
            for idx in token_budget_batches(lengths, self.max_batch_tokens):
                batch = w.collate([items[i].encoding for i in idx])
                with self._pass(len(idx), batch.input_ids.numel()):
                    res = w.forward(batch, output_attentions=True)
                att = torch.stack(res.attentions, dim=1).float().cpu()  # [B, L, heads, T, T]
                for b, i in enumerate(idx):
                    cols = torch.tensor(batch.positions(b))
                    out[i] = att[b][:, :, cols][:, :, :, cols]
        return out
