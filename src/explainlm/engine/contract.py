"""The contract between methods and engines, the same for every target kind.

A method *plans* work and *reduces* results; an engine *scores* against its target:

* perturbations: keep-masks over an item's features → ``score_masks`` → target values
  ``[n_masks, n_outputs]``;
* gradient rows: embedding rows → ``gradients`` → one reduced map per output;
* attention: ``attention_maps`` → the maps and the query position of each output.

``n_outputs`` is 1 for a classifier's target (and for a generation's whole-sequence log-prob) and
the number of generated tokens for per-token generation targets. A method returns an
:class:`Attribution` per item (a score per output and unit) and the engine turns it into its result
type (``Explanation`` or ``GenerationAttribution``). See :mod:`explainlm.methods` for the full
description and :class:`AttributionEngine` for the engine side.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

UNITS = ("features", "tokens")


@dataclass
class Attribution:
    """A method's scores for one item: ``scores[output, unit]`` and the method's diagnostics.

    ``units="features"``: columns are the engine's features of the item (word units or text tokens;
    for generation, the prompt's units and then the earlier generated tokens). A matrix narrower than
    the item's features attributes the first ones only (LIME and KernelSHAP attribute the prompt).
    ``units="tokens"``: columns are the positions of the model tokens the item's output sees
    (gradient and attention maps, special tokens included).
    NaN marks a unit the method did not attribute. ``per_output`` holds diagnostics with one value
    per output (IG's completeness delta, LIME's R²); ``diagnostics`` those of the whole item.
    """

    scores: np.ndarray
    units: str = "features"
    per_output: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scores = np.atleast_2d(np.asarray(self.scores, dtype=np.float64))
        if self.units not in UNITS:
            raise ValueError(f"units must be one of {UNITS}")
        self.per_output = {k: np.asarray(v, dtype=np.float64) for k, v in self.per_output.items()}

    @property
    def n_outputs(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], units: str = "tokens") -> Attribution:
        """From one dict per output: ``"scores"`` (a vector; shorter rows are NaN-padded) and
        scalar diagnostics (e.g. ``"delta"``), which become :attr:`per_output`."""
        width = max((len(r["scores"]) for r in rows), default=0)
        scores = np.full((len(rows), width), np.nan)
        for i, r in enumerate(rows):
            v = np.asarray(r["scores"], dtype=np.float64)
            scores[i, : v.size] = v
        keys = sorted({k for r in rows for k in r if k != "scores" and r[k] is not None})
        per_output = {k: np.array([float(r.get(k, np.nan)) for r in rows]) for k in keys}
        return cls(scores, units, per_output)

    def output_diagnostics(self, output: int | None) -> dict[str, Any]:
        """Diagnostics as stored on a result: per-output values as scalars (``output`` given) or
        as lists (``None``), plus the item's own."""
        out = dict(self.diagnostics)
        for k, v in self.per_output.items():
            out[k] = float(v[output]) if output is not None else [float(x) for x in v]
        return out


# ------------------------------------------------------------------------------------ identity
def stable_key(*parts: Any) -> str:
    """A hex digest of JSON-able parts: the identity of an item (text, tokens and target)."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def item_seed(seed: int, key: str) -> np.random.SeedSequence:
    """The seed of one item: the method's ``seed`` and the item's identity, never its position."""
    return np.random.SeedSequence([int(seed), int(key[:16], 16)])


def item_rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng(item_seed(seed, key))


def item_torch_generator(seed: int, key: str) -> torch.Generator:
    state = item_seed(seed, key).generate_state(2, np.uint32)
    return torch.Generator(device="cpu").manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


# -------------------------------------------------------------------------------- score cache
class ScoreCache:
    """Target values already computed for (item, granularity, replace, keep-mask).

    Shared by everything that runs on one engine: a method's own masks, other methods' masks on
    the same text, and the faithfulness check reuse each other's passes.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, str, str, bytes], np.ndarray] = {}

    def get(self, key: str, granularity: str, replace: str, mask: np.ndarray) -> np.ndarray | None:
        return self._values.get((key, granularity, replace, _mask_bytes(mask)))

    def put(
        self, key: str, granularity: str, replace: str, mask: np.ndarray, values: np.ndarray
    ) -> None:
        self._values[(key, granularity, replace, _mask_bytes(mask))] = values

    def __len__(self) -> int:
        return len(self._values)


def _mask_bytes(mask: np.ndarray) -> bytes:
    m = np.asarray(mask, dtype=bool)
    return np.packbits(m).tobytes() + m.size.to_bytes(4, "little")


def split_cached(
    cache: ScoreCache | None,
    keys: Sequence[str],
    masks: Sequence[np.ndarray],
    granularity: str,
    replace: str,
) -> tuple[list[list[np.ndarray | None]], list[np.ndarray]]:
    """Per item: the cached values of each mask row (``None`` = to compute), and the rows to compute
    (duplicates within an item computed once)."""
    known: list[list[np.ndarray | None]] = []
    todo: list[np.ndarray] = []
    for key, m in zip(keys, masks, strict=True):
        row_values: list[np.ndarray | None] = []
        seen: dict[bytes, int] = {}
        need = []
        for r, row in enumerate(m):
            v = cache.get(key, granularity, replace, row) if cache is not None else None
            b = _mask_bytes(row)
            if v is None and b not in seen:
                seen[b] = r
                need.append(r)
            row_values.append(v)
        known.append(row_values)
        todo.append(m[need] if len(need) else m[:0])
    return known, todo


def merge_cached(
    cache: ScoreCache | None,
    keys: Sequence[str],
    masks: Sequence[np.ndarray],
    granularity: str,
    replace: str,
    known: list[list[np.ndarray | None]],
    todo: Sequence[np.ndarray],
    computed: Sequence[np.ndarray],
    n_outputs: Sequence[int],
) -> list[np.ndarray]:
    """Fill the cache with the computed rows and assemble each item's ``[n_masks, n_outputs]``."""
    out = []
    for key, m, row_values, t, vals, k in zip(
        keys, masks, known, todo, computed, n_outputs, strict=True
    ):
        by_mask = {_mask_bytes(row): v for row, v in zip(t, vals, strict=True)}
        if cache is not None:
            for row, v in zip(t, vals, strict=True):
                cache.put(key, granularity, replace, row, v)
        full = np.empty((len(m), k))
        for r, row in enumerate(m):
            v = row_values[r]
            full[r] = by_mask[_mask_bytes(row)] if v is None else v
        out.append(full)
    return out


# ----------------------------------------------------------------------------- engine protocol
RowsFn = Callable[[Any, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
ReduceFn = Callable[[Any, torch.Tensor, torch.Tensor, torch.Tensor], Mapping[str, Any]]


class AttributionEngine(Protocol):
    """What a method may ask of an engine (``Engine`` for classifiers, ``GenerationEngine``)."""

    kind: str  # "classification" | "generation"

    def feature_count(self, item: Any, granularity: str, *, shared: bool = False) -> int:
        """Features of an item; ``shared``: only those every output sees (the prompt's units)."""
        ...

    def n_outputs(self, item: Any) -> int: ...

    def full_values(self, item: Any) -> np.ndarray:
        """The target value of each output on the unperturbed input ``[n_outputs]``."""
        ...

    def item_key(self, item: Any) -> str:
        """The item's identity (text, tokens and target): seeds derive from it."""
        ...

    def score_masks(
        self,
        items: Sequence[Any],
        masks: Sequence[np.ndarray],
        granularity: str,
        replace: str = "remove",
    ) -> list[np.ndarray]:
        """Target values ``[n_masks, n_outputs]`` of each item under each keep-mask."""
        ...

    def gradients(
        self,
        items: Sequence[Any],
        n_rows: int,
        rows_fn: RowsFn,
        reduce_fn: ReduceFn,
        *,
        seed: int = 0,
    ) -> list[list[Mapping[str, Any]]]:
        """Per item, per output: ``reduce_fn``'s dict (``"scores"`` over the output's tokens)."""
        ...

    def attention_maps(self, items: Sequence[Any]) -> list[tuple[torch.Tensor, list[int]]]:
        """Per item: attention ``[layers, heads, T, T]`` and the query position of each output."""
        ...
