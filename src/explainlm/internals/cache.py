"""Capture activations at named hook points: batched, padding-aware, optionally pooled or on disk.

>>> from explainlm.models import ModelWrapper
>>> w = ModelWrapper.load("minilm-l6")                                       # doctest: +SKIP
>>> cache = capture(w, ["a fine film", "dull"], points=["layers.*.resid_post"])  # doctest: +SKIP
>>> cache["layers.5.resid_post"][1].shape      # padding removed: [tokens, d]  # doctest: +SKIP
torch.Size([3, 384])
>>> cache.pooled("layers.5.resid_post", how="mean").shape                      # doctest: +SKIP
torch.Size([2, 384])
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from explainlm.internals.hooks import Architecture, architecture, expand, hooks
from explainlm.models.batching import token_budget_batches

POOLS = ("mean", "last", "first")


def pool_tensor(t: torch.Tensor, how: str) -> torch.Tensor:
    """Pool a ``[T, d]`` tensor over tokens: ``mean``, ``last`` or ``first``."""
    if how == "mean":
        return t.mean(0)
    if how == "last":
        return t[-1]
    if how == "first":
        return t[0]
    raise ValueError(f"unknown pooling {how!r}; use one of {', '.join(POOLS)}")


def _item(t: torch.Tensor, cols: list[int], b: int, name: str) -> torch.Tensor:
    if name.endswith("attn.pattern"):  # [B, H, T, T] → [H, n, n]
        lo, hi = cols[0], cols[-1] + 1
        return t[b, :, lo:hi, lo:hi]
    return t[b, cols[0] : cols[-1] + 1]


def iter_activations(
    wrapper: Any,
    texts: Sequence[str],
    points: Sequence[str],
    *,
    template: str | None = None,
    chat: bool | None = False,
    max_batch_tokens: int = 4096,
    progress: bool = False,
    encodings: Sequence[Any] | None = None,
) -> Iterator[list[tuple[int, dict[str, torch.Tensor]]]]:
    """Yield, batch by batch, ``(text index, {point: tensor})`` with padding removed (on CPU)."""
    arch = architecture(wrapper.model)
    names = expand(arch, points)
    encs = encodings or wrapper.encode(list(texts), template=template, chat=chat)
    batches = list(token_budget_batches([len(e) for e in encs], max_batch_tokens))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(encs), desc="activations", unit="text")
    for idx in batches:
        batch = wrapper.collate([encs[i] for i in idx])
        seen: dict[str, torch.Tensor] = {}

        def grab(name: str, store: dict[str, torch.Tensor] = seen) -> Any:
            return lambda t: store.__setitem__(name, t.detach())

        with torch.no_grad(), hooks(wrapper, {n: grab(n) for n in names}, arch=arch):
            wrapper.forward(batch)
        out = []
        for b, i in enumerate(idx):
            cols = batch.positions(b)
            out.append((i, {n: _item(seen[n], cols, b, n).float().cpu() for n in names}))
        yield out
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()


class ActivationCache:
    """Activations per point and per text, in the order of the input texts.

    Values are ``[T, d]`` (``[heads, T, T]`` for patterns) with padding removed, or ``[d]`` when the
    cache was captured with ``pool=``. A cache captured ``to_disk`` loads tensors on access.
    """

    def __init__(
        self,
        points: list[str],
        tokens: list[list[str]],
        data: dict[str, list[torch.Tensor]] | None = None,
        *,
        pooled_with: str | None = None,
        directory: Path | None = None,
        arch: Architecture | None = None,
    ) -> None:
        self.points = points
        self.tokens = tokens
        self.pooled_with = pooled_with
        self.directory = directory
        self.arch = arch
        self._data = data or {}

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, point: str) -> bool:
        return point in self.points

    def __getitem__(self, point: str) -> list[torch.Tensor]:
        if point not in self.points:
            raise KeyError(f"{point!r} was not captured; captured: {', '.join(self.points)}")
        if point not in self._data and self.directory is not None:
            self._data[point] = self._load(point)
        return self._data[point]

    def _load(self, point: str) -> list[torch.Tensor]:
        from safetensors.torch import load_file

        assert self.directory is not None
        index = json.loads((self.directory / "index.json").read_text())
        out: list[torch.Tensor | None] = [None] * len(self.tokens)
        for f in index["files"]:
            tensors = load_file(str(self.directory / f))
            for key, t in tensors.items():
                name, _, i = key.rpartition("/")
                if name == point:
                    out[int(i)] = t
        return [t for t in out if t is not None]

    def pooled(self, point: str, how: str = "mean") -> torch.Tensor:
        """``[N, d]``: each text's activation at ``point`` pooled over its tokens."""
        if point.endswith("attn.pattern"):
            raise ValueError("attention patterns cannot be pooled into vectors")
        values = self[point]
        if self.pooled_with is not None:
            if how != self.pooled_with:
                raise ValueError(f"this cache holds {self.pooled_with}-pooled vectors only")
            return torch.stack(values)
        return torch.stack([pool_tensor(t, how) for t in values])

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} texts, points={self.points})"


def capture(
    wrapper: Any,
    texts: Sequence[str],
    points: Sequence[str] = ("layers.*.resid_post",),
    *,
    template: str | None = None,
    chat: bool | None = False,
    max_batch_tokens: int = 4096,
    pool: str | None = None,
    to_disk: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> ActivationCache:
    """Run ``texts`` through the model and keep the activations at ``points``.

    ``points`` take ``*`` for every layer (``layers.*.attn.pattern``). The forward pass is never
    changed (hooks only read). ``pool`` (mean/last/first) keeps one vector per text and point, which
    is what probes need on large datasets; ``to_disk=DIR`` writes one safetensors file per batch and
    returns a cache that loads a point when it is first read. Chat markup is off by default
    (``chat=False``): internals look at the raw text.
    """
    arch = architecture(wrapper.model)
    names = expand(arch, points)
    if pool is not None:
        pool_tensor(torch.zeros(1, 1), pool)  # validate the name early
        if any(n.endswith("attn.pattern") for n in names):
            raise ValueError("attention patterns cannot be pooled; capture them without pool=")
    directory = Path(to_disk) if to_disk is not None else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    tokens: list[list[str]] = [[] for _ in texts]
    data: dict[str, list[Any]] = {n: [None] * len(texts) for n in names}
    files = []
    encs = wrapper.encode(list(texts), template=template, chat=chat)
    for i, e in enumerate(encs):
        tokens[i] = list(e.tokens)
    for k, items in enumerate(
        iter_activations(
            wrapper,
            texts,
            names,
            template=template,
            chat=chat,
            max_batch_tokens=max_batch_tokens,
            progress=progress,
            encodings=encs,
        )
    ):
        chunk: dict[str, torch.Tensor] = {}
        for i, acts in items:
            for n, t in acts.items():
                value = pool_tensor(t, pool) if pool is not None else t
                if directory is None:
                    data[n][i] = value.clone()
                else:
                    chunk[f"{n}/{i}"] = value.contiguous()
        if directory is not None:
            from safetensors.torch import save_file

            name = f"batch-{k:05d}.safetensors"
            save_file(chunk, str(directory / name))
            files.append(name)
    if directory is not None:
        meta = {"points": names, "tokens": tokens, "pool": pool, "files": files}
        (directory / "index.json").write_text(json.dumps(meta))
        return ActivationCache(names, tokens, pooled_with=pool, directory=directory, arch=arch)
    return ActivationCache(names, tokens, data, pooled_with=pool, arch=arch)


def load_cache(directory: str | os.PathLike[str]) -> ActivationCache:
    """Open a cache written by ``capture(..., to_disk=DIR)``."""
    d = Path(directory)
    meta = json.loads((d / "index.json").read_text())
    return ActivationCache(meta["points"], meta["tokens"], pooled_with=meta["pool"], directory=d)
