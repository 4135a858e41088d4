"""Attention-head importance by ablation (Michel et al. 2019, "Are Sixteen Heads Really Better than One?").

Each head's output (its slice of ``layers.{i}.attn.z``, the input of the attention output
projection) is zeroed, or replaced by its mean over the dataset's tokens, and the change of a target
metric is averaged over the texts: a layer × head grid of ``metric(ablated) − metric(intact)``.

* sequence classifiers: the probability of the gold label (``labels``) or else of the intact
  model's predicted label — negative effects mean the head helps the prediction;
* causal LMs: the mean next-token loss (NLL, nats) over each text — positive effects mean the head
  helps language modelling.

Many ablations run in one forward pass (one row per text × ablated head).

>>> from explainlm.models import ModelWrapper
>>> w = ModelWrapper.load("minilm-l6")                              # doctest: +SKIP
>>> r = head_importance(w, ["a fine film", "a dull film"])          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from explainlm.errors import UserError
from explainlm.internals.cache import iter_activations
from explainlm.internals.hooks import Architecture, architecture, hooks
from explainlm.models.batching import token_budget_batches

ABLATIONS = ("zero", "mean")


@dataclass
class HeadImportance:
    """``grid[layer][head]`` = mean over texts of metric(head ablated) − metric(intact)."""

    grid: list[list[float]]
    metric: str
    ablation: str
    base: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def ranked(self, k: int = 10) -> list[tuple[int, int, float]]:
        """The ``k`` heads with the largest absolute effect: (layer, head, effect)."""
        cells = [(i, h, v) for i, row in enumerate(self.grid) for h, v in enumerate(row)]
        return sorted(cells, key=lambda c: -abs(c[2]))[:k]


def head_means(
    wrapper: Any, encodings: Sequence[Any], arch: Architecture, max_batch_tokens: int
) -> dict[int, torch.Tensor]:
    """Mean of ``attn.z`` over every token of the dataset, per layer (``[heads * d_head]``)."""
    sums: dict[int, torch.Tensor] = {}
    count = 0
    points = [f"layers.{i}.attn.z" for i in range(arch.n_layers)]
    texts = [e.text for e in encodings]
    for items in iter_activations(
        wrapper, texts, points, max_batch_tokens=max_batch_tokens, encodings=encodings
    ):
        for _, acts in items:
            count += next(iter(acts.values())).shape[0]
            for i, p in enumerate(points):
                s = acts[p].sum(0)
                sums[i] = sums[i] + s if i in sums else s
    return {i: s / max(count, 1) for i, s in sums.items()}


def _row_metric(wrapper: Any, out: Any, batch: Any, targets: torch.Tensor) -> torch.Tensor:
    logits = out.logits.float()
    if wrapper.kind == "sequence_classifier":
        return torch.softmax(logits, -1).gather(1, targets[:, None])[:, 0]
    ids, mask = batch.input_ids, batch.attention_mask
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none"
    )
    m = (mask[:, 1:] * mask[:, :-1]).float()
    return (nll * m).sum(1) / m.sum(1).clamp(min=1)


def head_importance(
    wrapper: Any,
    texts: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    ablation: str = "zero",
    template: str | None = None,
    max_batch_tokens: int = 2048,
    progress: bool = False,
) -> HeadImportance:
    """Ablate every head in turn over ``texts``; see the module docstring for the metric."""
    if ablation not in ABLATIONS:
        raise UserError(f"unknown ablation {ablation!r}; use {', '.join(ABLATIONS)}")
    if wrapper.kind not in ("sequence_classifier", "causal_lm"):
        raise UserError("head importance needs a sequence classifier or a causal LM")
    arch = architecture(wrapper.model)
    n_l, n_h, d_h = arch.n_layers, arch.n_heads, arch.d_head
    encs = wrapper.encode(list(texts), template=template, chat=False)
    metric = "label_prob" if wrapper.kind == "sequence_classifier" else "lm_loss"
    gold: list[int] | None = None
    if labels is not None:
        if metric != "label_prob":
            raise UserError("labels apply to sequence classifiers only")
        gold = _label_indices(wrapper, labels)
    means = head_means(wrapper, encs, arch, max_batch_tokens) if ablation == "mean" else {}
    configs: list[tuple[int, int] | None] = [None] + [
        (i, h) for i in range(n_l) for h in range(n_h)
    ]
    totals = torch.zeros(len(configs), dtype=torch.float64)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(encs), desc="head ablations", unit="text")
    for idx in token_budget_batches([len(e) for e in encs], max_batch_tokens):
        batch = wrapper.collate([encs[i] for i in idx])
        bt, width = len(idx), batch.input_ids.shape[1]
        with torch.no_grad():
            out = wrapper.forward(batch)
        if metric == "label_prob":
            pred = out.logits.argmax(-1)
            tgt = torch.tensor([gold[i] for i in idx]) if gold is not None else pred
        else:
            tgt = torch.zeros(bt, dtype=torch.long)
        per = max(1, max_batch_tokens // (bt * width))
        for start in range(0, len(configs), per):
            chunk = configs[start : start + per]
            rows = len(chunk) * bt
            keep = torch.ones((n_l, rows, n_h), device=wrapper.device)
            for c, cfg in enumerate(chunk):
                if cfg is not None:
                    keep[cfg[0], c * bt : (c + 1) * bt, cfg[1]] = 0

            big = wrapper.collate([encs[i] for i in idx] * len(chunk))
            fns = {
                f"layers.{i}.attn.z": _head_ablation(keep[i], means.get(i), n_h, d_h)
                for i in range(n_l)
            }
            with torch.no_grad(), hooks(wrapper, fns, arch=arch):
                o = wrapper.forward(big)
            vals = _row_metric(wrapper, o, big, tgt.repeat(len(chunk)).to(wrapper.device))
            totals[start : start + len(chunk)] += vals.view(len(chunk), bt).sum(1).double().cpu()
        if bar is not None:
            bar.update(bt)
    if bar is not None:
        bar.close()
    mean = totals / len(encs)
    base = float(mean[0])
    grid = (mean[1:] - mean[0]).view(n_l, n_h).tolist()
    return HeadImportance(grid, metric, ablation, base, len(encs))


def _label_indices(wrapper: Any, labels: Sequence[str]) -> list[int]:
    """Class indices of ``labels`` (label names, or class indices given as strings)."""
    l2i = {str(k): int(v) for k, v in wrapper.model.config.label2id.items()}
    n_labels = int(wrapper.model.config.num_labels)
    l2i |= {str(i): i for i in range(n_labels) if str(i) not in l2i}  # class indices work too
    unknown = sorted({str(x) for x in labels} - set(l2i))
    if unknown:
        raise UserError(f"unknown label(s) {unknown}; the model has {sorted(l2i)}")
    return [l2i[str(x)] for x in labels]


def _head_ablation(
    keep: torch.Tensor, mean: torch.Tensor | None, n_heads: int, d_head: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A hook on one layer's per-head outputs ``z``: heads with ``keep`` 0 in a row are zeroed
    (``mean`` None) or replaced by their mean output."""

    def fn(z: torch.Tensor) -> torch.Tensor:
        zz = z.view(*z.shape[:-1], n_heads, d_head)
        m = keep[:, None, :, None].to(z.dtype)
        if mean is not None:
            mu = mean.to(z.device, z.dtype).view(n_heads, d_head)
            return (zz * m + mu * (1 - m)).view_as(z)
        return (zz * m).view_as(z)

    return fn
