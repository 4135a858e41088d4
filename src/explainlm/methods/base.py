"""The method contract: ``Method(**params).attribute(engine, items, granularity)``.

A method implements :meth:`Method.compute`: it plans work (keep-masks over the item's features,
embedding rows, attention reads), asks the engine to score it, and reduces the scores to an
:class:`~explainlm.engine.Attribution` per item (a row per output of the engine's target). The
engine is :class:`~explainlm.engine.Engine` (a classifier's target) or
:class:`~explainlm.generation.GenerationEngine` (generated tokens); the method does not know which.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from explainlm.configurable import Configurable
from explainlm.engine.contract import Attribution, AttributionEngine, item_rng
from explainlm.engine.masks import check_granularity
from explainlm.errors import UserError
from explainlm.registry import Registry

REQUIREMENTS = ("masks", "gradients", "attention")


class Method(Configurable):
    """Base class: subclasses set ``name``, ``schema``, ``citation``, ``requires`` and implement
    :meth:`compute`.

    ``requires``: what the method asks of the engine (``masks``, ``gradients``, ``attention``), so
    that an engine refuses a method it cannot serve before any work. ``additive``: the method's
    map of a sum of targets is the sum of the targets' maps (gradient × input, integrated
    gradients; not norms or attention), which lets a generation engine explain a whole-sequence
    target from per-token maps.
    """

    requires: ClassVar[tuple[str, ...]] = ()
    additive: ClassVar[bool] = False
    # its guarantees need float32 gradients: under precision "auto" its gradient passes run in fp32
    precision_sensitive: ClassVar[bool] = False

    def attribute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str = "word"
    ) -> list[Any]:
        """Explain every item with this method, all items sharing the engine's batched passes.

        Returns the engine's result type, one per item: :class:`~explainlm.explanation.Explanation`
        or :class:`~explainlm.generation.GenerationAttribution`.
        """
        check_granularity(granularity)
        engine.check_method(self)  # type: ignore[attr-defined]
        start = time.perf_counter()
        with engine.labelled(self.name, method=self):  # type: ignore[attr-defined]
            if self.is_legacy():
                raw = [
                    legacy_attribution(self.name, r, granularity)
                    for r in self._attribute(engine, items, granularity)
                ]
            else:
                raw = self.compute(engine, items, granularity)
        per_item = (time.perf_counter() - start) / max(len(items), 1)
        return [
            engine.result(it, self, r, granularity, per_item)  # type: ignore[attr-defined]
            for it, r in zip(items, raw, strict=True)
        ]

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        """One :class:`~explainlm.engine.Attribution` per item (subclasses implement this)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ helpers
    def rng(self, engine: AttributionEngine, item: Any) -> np.random.Generator:
        """A generator seeded by this method's ``seed`` and the item's identity (text and target),
        so results do not depend on batching, chunking or input order."""
        return item_rng(int(self.params.get("seed", 0)), engine.item_key(item))

    # ------------------------------------------------------------- the earlier contract
    def is_legacy(self) -> bool:
        """Implements only the earlier ``_attribute`` (dicts of scores; classifiers only)."""
        return type(self)._attribute is not Method._attribute

    def _attribute(
        self, engine: Any, items: Sequence[Any], granularity: str
    ) -> list[dict[str, Any]]:
        """Deprecated: per item, ``token_scores`` or ``word_scores`` (and ``delta``).

        Methods that override it are served for classifiers only; this default runs
        :meth:`compute` and returns its results in that form (so an earlier-contract subclass of a
        method can still call ``super()._attribute``).
        """
        return [
            legacy_dict(it, granularity, a)
            for it, a in zip(items, self.compute(engine, items, granularity), strict=True)
        ]


def legacy_attribution(name: str, raw: dict[str, Any], granularity: str) -> Attribution:
    """An :class:`Attribution` from an earlier-contract result dict."""
    if granularity == "token" and raw.get("token_scores") is None:
        raise UserError(f"{name} gave no token scores")
    extras = {k: raw[k] for k in ("delta",) if raw.get(k) is not None}
    diagnostics = {
        k: v for k, v in raw.items() if k not in ("token_scores", "word_scores", "delta")
    }
    if raw.get("token_scores") is not None:
        scores, units = np.asarray(raw["token_scores"], dtype=np.float64), "tokens"
    else:
        scores, units = np.asarray(raw["word_scores"], dtype=np.float64), "features"
    per_output = {k: np.array([float(v)]) for k, v in extras.items()}
    return Attribution(scores[None, :], units, per_output, diagnostics)


def legacy_dict(item: Any, granularity: str, attribution: Attribution) -> dict[str, Any]:
    """A classification :class:`Attribution` in the earlier contract's form."""
    row = np.nan_to_num(attribution.scores[0], nan=0.0)
    out: dict[str, Any] = dict(attribution.output_diagnostics(0))
    if attribution.units == "tokens":
        out["token_scores"] = row
    elif granularity == "word":
        out["word_scores"] = row
    else:
        full = np.zeros(len(item.encoding))
        full[item.encoding.text_token_positions] = row
        out["token_scores"] = full
    return out


def same_rows(
    item: Any, x: torch.Tensor, special: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Rows function of plain gradient methods: the input itself, once."""
    return x.unsqueeze(0)


METHODS: Registry[type[Method]] = Registry("method")


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: add a method to :data:`METHODS` under its ``name``."""
    return METHODS.register()(cls)


def get_method(name: str, **params: Any) -> Method:
    """Instantiate a registered method by name with its parameters (validated by its schema)."""
    return METHODS[name](**params)
