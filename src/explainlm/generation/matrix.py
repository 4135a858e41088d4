"""From a method's :class:`~explainlm.engine.Attribution` of a generation to its
[generated × source] matrix (:class:`~explainlm.generation.GenerationAttribution`).

Columns are the prompt's units (words, or every prompt token with template tokens shown but never
features), then every generated token but the last. Row i (generated token i) has values only for
sources before it: the prompt and generated tokens 0..i−1; ``None`` elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from explainlm.engine import Attribution
from explainlm.generation.result import GenerationAttribution

if TYPE_CHECKING:
    from explainlm.generation.engine import GenerationEngine, GenerationItem

Row = list[float | None]


def columns(item: GenerationItem, granularity: str) -> tuple[list[str], list[str]]:
    """Source units and their kinds: prompt units, then every generated token but the last."""
    enc, gen = item.prompt, item.generation
    later = gen.tokens[: item.rows - 1]
    if granularity == "token":
        kinds = ["template" if sp else "prompt" for sp in enc.special]
        return list(enc.tokens) + later, kinds + ["generated"] * len(later)
    return enc.words + later, ["prompt"] * len(enc.words) + ["generated"] * len(later)


def _value(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def to_row(item: GenerationItem, granularity: str, token_scores: Sequence[float], row: int) -> Row:
    """A token-score vector over ``prompt + generated[:row]`` as one matrix row."""
    enc = item.prompt
    n_prompt = len(enc)
    scores = np.asarray(token_scores, dtype=np.float64)
    gen_part: Row = [_value(v) for v in scores[n_prompt : n_prompt + row]]
    gen_part += [None] * (item.rows - 1 - len(gen_part))
    if granularity == "token":
        return [_value(v) for v in scores[:n_prompt]] + gen_part
    words = np.zeros(len(enc.word_spans))
    for v, wid, sp in zip(scores[:n_prompt], enc.word_ids, enc.special, strict=True):
        if wid >= 0 and not sp:
            words[wid] += float(v)
    return [_value(v) for v in words] + gen_part


def feature_row(
    item: GenerationItem, granularity: str, scores: np.ndarray, row: int, n_cols: int
) -> Row:
    """A feature-score vector (prompt units, then earlier generated tokens) as one matrix row."""
    enc = item.prompt
    d = len(enc.word_spans) if granularity == "word" else len(enc.text_token_positions)
    cols = list(range(d)) if granularity == "word" else list(enc.text_token_positions)
    out: Row = [None] * n_cols
    for j in range(min(d, scores.size)):
        out[cols[j]] = _value(scores[j])
    first_generated = n_cols - (item.rows - 1)
    for k in range(min(row, scores.size - d)):  # generated token k is a source of rows > k
        out[first_generated + k] = _value(scores[d + k])
    return out


def build_attribution(
    engine: GenerationEngine,
    item: GenerationItem,
    method: Any,
    attribution: Attribution,
    granularity: str,
    seconds: float,
) -> GenerationAttribution:
    """The matrix, target units and diagnostics of one generation explained by one method."""
    g = item.generation
    units, kinds = columns(item, granularity)
    sequence = engine.sequence_target
    matrix = []
    for o in range(attribution.n_outputs):
        row = 0 if sequence else o  # a whole-sequence target is attributed to the prompt only
        vec = attribution.scores[o]
        if attribution.units == "tokens":
            matrix.append(to_row(item, granularity, vec, row))
        else:
            matrix.append(feature_row(item, granularity, vec, row, len(units)))
    if sequence:
        t_units, t_lp = [g.text], [float(sum(g.logprobs[: item.rows]))]
    else:
        t_units = list(g.tokens[: item.rows])
        t_lp = [float(v) for v in g.logprobs[: item.rows]]
    diagnostics = attribution.output_diagnostics(None)
    diagnostics.setdefault("precision", engine.engine.precision_of(method))
    delta = diagnostics.get("delta")
    return GenerationAttribution(
        prompt=g.prompt,
        continuation=g.text,
        method=method.name,
        target=engine.target.name,
        granularity=granularity,
        source_units=units,
        source_kinds=kinds,
        target_units=t_units,
        target_logprobs=t_lp,
        matrix=matrix,
        params=dict(method.params),
        delta=None if delta is None else [float(v) for v in delta],
        seconds=seconds,
        model=engine.generator.name,
        chat=engine.generator.chat,
        diagnostics=diagnostics,
    )
