"""How good an edited text is: semantic similarity (MiniLM sentence embeddings), fluency (LLM
perplexity), and dataset summaries with bootstrap confidence intervals.

Similarity is the cosine of all-MiniLM-L6-v2 sentence embeddings: the mean of the last hidden states
over the attention mask (special tokens included), as sentence-transformers pools this model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explainlm.evaluation.stats import bootstrap_ci
from explainlm.models import ModelWrapper
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS, token_budget_batches

DEFAULT_ENCODER = "minilm-l6"


class SentenceSimilarity:
    """Cosine similarity of mean-pooled sentence embeddings (default: the built-in MiniLM)."""

    def __init__(
        self, wrapper: ModelWrapper, *, max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    ) -> None:
        self.wrapper = wrapper
        self.max_batch_tokens = int(max_batch_tokens)
        self._cache: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, name: str = DEFAULT_ENCODER, *, device: str | None = None) -> SentenceSimilarity:
        return cls(ModelWrapper.load(name, device=device, kind="encoder"))

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length sentence embeddings ``[n, hidden]``."""
        w = self.wrapper
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        encs = w.encode(missing, allow_empty=True) if missing else []
        for idx in token_budget_batches([len(e) for e in encs], self.max_batch_tokens):
            batch = w.collate([encs[i] for i in idx])
            out = w.forward(batch)
            h = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            mask = batch.attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()
            for b, i in enumerate(idx):
                self._cache[missing[i]] = pooled[b]
        if len(self._cache) > 100_000:
            keep = set(texts)
            self._cache = {k: v for k, v in self._cache.items() if k in keep}
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0))

    def similarity(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each pair ``(a[i], b[i])``."""
        if not a:
            return np.zeros(0)
        ea, eb = self.embed(list(a)), self.embed(list(b))
        return np.clip((ea * eb).sum(-1), -1.0, 1.0)

    def handler(self) -> Any:
        """The ``"similarity"`` handler for :func:`explainlm.whatif.oracle.drive` (pairs in, floats out)."""
        return lambda pairs: list(self.similarity([p[0] for p in pairs], [p[1] for p in pairs]))


def ci(values: Sequence[float], *, seed: int = 0, n_boot: int = 2000) -> dict[str, Any]:
    """``{"mean", "low", "high", "n"}``: the mean and its 95% percentile-bootstrap interval."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    m, lo, hi = bootstrap_ci(vals, seed=seed, n_boot=n_boot)
    return {"mean": _num(m), "low": _num(lo), "high": _num(hi), "n": len(vals)}


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def format_ci(c: dict[str, Any], fmt: str = ".3f") -> str:
    """``0.812 [0.760, 0.860]`` (``n/a`` without values)."""
    if c.get("mean") is None:
        return "n/a"
    return f"{c['mean']:{fmt}} [{c['low']:{fmt}}, {c['high']:{fmt}}]"
