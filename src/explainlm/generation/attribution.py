"""Attribute every generated token to the prompt and to the tokens generated before it.

>>> from explainlm.generation import explain_generation
>>> res = explain_generation(["The capital of France is"], "smollm2-135m",
...                          methods=["occlusion"], max_new_tokens=3)        # doctest: +SKIP
>>> res[0].top_sources(0)                                                    # doctest: +SKIP
[('France', 4.1), ('capital', 1.3), ('The', 0.2)]
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.generation.result import GenerationAttribution, GenerationSet
from explainlm.generation.scorer import NextTokenScorer, class_target_for, extend
from explainlm.methods import get_method
from explainlm.methods.base import Method
from explainlm.methods.perturbation import mask_variants, shapley_values
from explainlm.models import Generation, Generator, load_model
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.models.wrapper import Encoding
from explainlm.targets import GenerationTarget

GRADIENT_METHODS = ("saliency", "grad_x_input", "integrated_gradients", "smoothgrad")
ATTENTION_METHODS = ("attention", "attention_rollout")
LINEAR_METHODS = ("grad_x_input", "integrated_gradients")  # a sum of targets' maps is the sum's map


@dataclass
class _Case:
    """One generation to explain: prompt encoding, generated ids, foil ids aligned by position."""

    gen: Generation
    foil: list[int] | None

    @property
    def rows(self) -> int:
        m = len(self.gen.token_ids)
        return m if self.foil is None else min(m, len(self.foil))

    @property
    def prompt(self) -> Encoding:
        return self.gen.prompt_encoding


# ------------------------------------------------------------------------------------- columns
def columns(case: _Case, granularity: str) -> tuple[list[str], list[str]]:
    """Source units and their kinds: prompt units, then every generated token but the last."""
    enc, gen = case.prompt, case.gen
    later = gen.tokens[: case.rows - 1]
    if granularity == "token":
        kinds = ["template" if sp else "prompt" for sp in enc.special]
        return list(enc.tokens) + later, kinds + ["generated"] * len(later)
    return enc.words + later, ["prompt"] * len(enc.words) + ["generated"] * len(later)


def to_row(
    case: _Case, granularity: str, token_scores: Sequence[float], row: int
) -> list[float | None]:
    """A token-score vector over ``prompt + generated[:row]`` as one matrix row."""
    enc = case.prompt
    n_prompt = len(enc)
    gen_part: list[float | None] = [float(v) for v in token_scores[n_prompt : n_prompt + row]]
    gen_part += [None] * (case.rows - 1 - row)
    if granularity == "token":
        return [float(v) for v in token_scores[:n_prompt]] + gen_part
    words = np.zeros(len(enc.word_spans))
    for v, wid, sp in zip(token_scores[:n_prompt], enc.word_ids, enc.special, strict=True):
        if wid >= 0 and not sp:
            words[wid] += float(v)
    return [float(v) for v in words] + gen_part


# ----------------------------------------------------------------------------------- gradients
def _gradient_rows(
    engine: Engine,
    method: Method,
    cases: Sequence[_Case],
    granularity: str,
    target: GenerationTarget,
) -> list[tuple[list[list[float | None]], list[float] | None]]:
    encs, labels, foils, owner = [], [], [], []
    for c, case in enumerate(cases):
        g = case.gen
        for i in range(case.rows):
            encs.append(extend(case.prompt, g.token_ids[:i], g.tokens[:i]))
            labels.append(g.token_ids[i])
            foils.append(case.foil[i] if case.foil is not None else 0)
            owner.append((c, i))
    items = engine.prepare_encodings(encs, labels, foils if target.kind == "contrast" else None)
    explanations = method.attribute(engine, items, "token")
    out: list[tuple[list[list[float | None]], list[float] | None]] = [([], None) for _ in cases]
    for (c, i), e in zip(owner, explanations, strict=True):
        matrix, deltas = out[c]
        matrix.append(to_row(cases[c], granularity, e.token_scores or [], i))
        if e.delta is not None:
            out[c] = (matrix, (deltas or []) + [float(e.delta)])
    if target.kind == "sequence_logprob":
        summed = []
        for matrix, deltas in out:
            row = [
                None if any(r[j] is None for r in matrix) else float(sum(r[j] for r in matrix))
                for j in range(len(matrix[0]))
            ]
            summed.append(([row], None if deltas is None else [float(sum(deltas))]))
        return summed
    return out


# -------------------------------------------------------------------------------- perturbations
def _row_values(
    engine: Engine,
    contexts: Sequence[Encoding],
    continuations: Sequence[Sequence[int]],
    foils: Sequence[Sequence[int]] | None,
    target: GenerationTarget,
    references: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """The per-row target value (log p, p, or log p − log p(foil)) of each context variant."""
    out = []
    for r in engine.continuation_logprobs(contexts, continuations, foils, references=references):
        v = r if foils is None else r[0] - r[1]
        out.append(np.exp(v) if target.kind == "token_prob" else v)
    return out


def _features(case: _Case, granularity: str) -> tuple[int, list[int]]:
    """Number of prompt features and the matrix column of each."""
    enc = case.prompt
    if granularity == "word":
        return len(enc.word_spans), list(range(len(enc.word_spans)))
    pos = enc.text_token_positions
    return len(pos), list(pos)


class _Plan:
    """Context variants of every case, scored together in shared passes.

    Every variant names the unablated row of its case as its reference, so the engine reuses that
    row's keys and values up to the variant's first change (its prefix is never recomputed).
    """

    def __init__(self, engine: Engine, target: GenerationTarget) -> None:
        self.engine, self.target = engine, target
        self.contexts: list[Encoding] = []
        self.continuations: list[list[int]] = []
        self.foils: list[list[int]] = []
        self.references: list[int] = []
        self._reference = 0

    def add_reference(
        self, context: Encoding, continuation: list[int], foil: list[int] | None
    ) -> int:
        """Add a case's unablated row; the variants added next reuse its prefix."""
        self._reference = len(self.contexts)
        self.add([context], continuation, foil)
        return self._reference

    def add(
        self,
        contexts: Sequence[Encoding],
        continuation: list[int],
        foil: list[int] | None,
        drop: int | None = None,
    ) -> slice:
        start = len(self.contexts)
        for ctx in contexts:
            self.contexts.append(ctx)
            self.references.append(self._reference)
            keep = [k for k in range(len(continuation)) if k != drop]
            self.continuations.append([continuation[k] for k in keep])
            self.foils.append([foil[k] for k in keep] if foil is not None else [])
        return slice(start, len(self.contexts))

    def run(self) -> list[np.ndarray]:
        foils = self.foils if self.target.kind == "contrast" else None
        refs = self.references if self.engine.wrapper.is_decoder else None
        return _row_values(self.engine, self.contexts, self.continuations, foils, self.target, refs)


def _occlusion_rows(
    engine: Engine,
    method: Method,
    cases: Sequence[_Case],
    granularity: str,
    target: GenerationTarget,
    encode: Any,
) -> list[tuple[list[list[float | None]], None]]:
    replace = method.params["replace"]
    plan = _Plan(engine, target)
    slots = []
    for case in cases:
        g, rows = case.gen, case.rows
        cont = list(g.token_ids[:rows])
        foil = list(case.foil[:rows]) if case.foil is not None else None
        d, _ = _features(case, granularity)
        variants = mask_variants(
            engine.wrapper, [case.prompt], [~np.eye(d, dtype=bool)], granularity, replace, encode
        )[0]
        full = plan.add_reference(case.prompt, cont, foil)
        prompt = plan.add(variants, cont, foil)
        generated = [plan.add([case.prompt], cont, foil, drop=k) for k in range(rows - 1)]
        slots.append((full, prompt, generated))
    values = plan.run()
    out = []
    for case, (full, prompt, generated) in zip(cases, slots, strict=True):
        n_cols = len(columns(case, granularity)[0])
        _, cols = _features(case, granularity)
        v_full = values[full]
        v_prompt = values[prompt]
        v_gen = values[generated[0].start : generated[-1].stop] if generated else []
        n_prompt_cols = n_cols - (case.rows - 1)
        if target.kind == "sequence_logprob":
            row: list[float | None] = [None] * n_cols
            for j, col in enumerate(cols):
                row[col] = float(np.nansum(v_full) - np.nansum(v_prompt[j]))
            out.append(([row], None))
            continue
        matrix = []
        for i in range(case.rows):
            row = [None] * n_cols
            for j, col in enumerate(cols):
                row[col] = float(v_full[i] - v_prompt[j][i])
            for k in range(i):  # generated token k < i removed: row i sits at position i − 1
                row[n_prompt_cols + k] = float(v_full[i] - v_gen[k][i - 1])
            matrix.append(row)
        out.append((matrix, None))
    return out


def _surrogate_rows(
    engine: Engine,
    method: Method,
    cases: Sequence[_Case],
    granularity: str,
    target: GenerationTarget,
    encode: Any,
) -> list[tuple[list[list[float | None]], None]]:
    """LIME or KernelSHAP over the prompt's units, per generated token or for the whole sequence."""
    replace = method.params["replace"]
    plan = _Plan(engine, target)
    plans = []
    for c, case in enumerate(cases):
        d, _ = _features(case, granularity)
        if method.name == "lime":
            masks, exact = method.masks(d, c), False  # type: ignore[attr-defined]
        else:
            masks, exact = method.masks(d, int(method.params["seed"]) + c)  # type: ignore[attr-defined]
        variants = mask_variants(
            engine.wrapper, [case.prompt], [masks], granularity, replace, encode
        )[0]
        foil = list(case.foil[: case.rows]) if case.foil is not None else None
        cont = list(case.gen.token_ids[: case.rows])
        plan.add_reference(case.prompt, cont, foil)
        plans.append((masks, exact, plan.add(variants, cont, foil)))
    values = plan.run()
    out = []
    for case, (masks, exact, sl) in zip(cases, plans, strict=True):
        y = np.stack(values[sl]) if sl.stop > sl.start else np.zeros((0, case.rows))
        targets = [np.nansum(y, axis=1)] if target.kind == "sequence_logprob" else list(y.T)
        n_cols = len(columns(case, granularity)[0])
        _, cols = _features(case, granularity)
        matrix = []
        for t in targets:
            if method.name == "lime":
                phi = method.fit(masks, t)[0]  # type: ignore[attr-defined]
            else:
                phi = shapley_values(masks, t, exact)
            row: list[float | None] = [None] * n_cols
            for j, col in enumerate(cols):
                row[col] = float(phi[j])
            matrix.append(row)
        out.append((matrix, None))
    return out


def _random_rows(
    method: Method, cases: Sequence[_Case], granularity: str, target: GenerationTarget
) -> list[tuple[list[list[float | None]], None]]:
    out = []
    for c, case in enumerate(cases):
        rng = np.random.default_rng([int(method.params["seed"]), c])
        n_rows = 1 if target.kind == "sequence_logprob" else case.rows
        scores = rng.standard_normal((n_rows, len(case.prompt) + case.rows))
        matrix = []
        for i in range(n_rows):
            row = to_row(case, granularity, scores[i], i if n_rows > 1 else 0)
            matrix.append(row)
        out.append((matrix, None))
    return out


# ------------------------------------------------------------------------------------------ API
def explain_generation(
    prompts: Sequence[str] | str,
    model: str | Generator = "smollm2-135m",
    methods: Sequence[str] = ("integrated_gradients",),
    *,
    max_new_tokens: int = 20,
    target_texts: Sequence[str | Sequence[int]] | None = None,
    target: str = "token_logprob",
    foil: str | None = None,
    granularity: str = "word",
    do_sample: bool = False,
    seed: int = 0,
    chat: bool | None = None,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    progress: bool = False,
) -> GenerationSet:
    """Generate (or teacher-force ``target_texts``: texts or token ids) and attribute every token.

    ``target``: ``token_logprob`` (default), ``token_prob`` or ``sequence_logprob``; ``foil`` (a
    text) makes it contrastive: log p(generated token) − log p(foil token at the same position).
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    if granularity not in ("word", "token"):
        raise UserError("granularity must be word or token")
    gen = model if isinstance(model, Generator) else load_model(model, "generator", chat=chat)
    if not isinstance(gen, Generator):
        raise UserError("explain_generation needs a causal LM")
    tgt = GenerationTarget("contrast", foil) if foil else GenerationTarget(target)
    params = dict(method_params or {})
    runners = [get_method(m, **params.get(m, {})) for m in methods]
    for r in runners:
        if (
            tgt.kind == "sequence_logprob"
            and r.name in GRADIENT_METHODS + ATTENTION_METHODS
            and r.name not in LINEAR_METHODS
        ):
            raise UserError(
                f"{r.name} cannot explain a whole-sequence target; use a per-token target"
            )
    if target_texts is not None:
        if len(target_texts) != len(prompts):
            raise UserError("give one target text per prompt")
        gens = gen.score(prompts, target_texts)
    else:
        gens = gen.generate(prompts, max_new_tokens=max_new_tokens, do_sample=do_sample, seed=seed)
    foil_ids = gen.continuation_ids(foil) if foil else None
    cases = [_Case(g, foil_ids) for g in gens]
    for case in cases:
        if case.rows == 0:
            raise UserError(f"nothing was generated for {case.gen.prompt!r}")
    engine = Engine(
        NextTokenScorer(gen.wrapper),
        class_target_for(tgt),
        max_batch_tokens=max_batch_tokens,
        progress=progress,
    )

    def encode(texts: list[str]) -> list[Encoding]:
        return gen.wrapper.encode(texts, chat=gen.chat, allow_empty=True)

    results: list[GenerationAttribution] = []
    for runner in runners:
        start = time.perf_counter()
        if runner.name in GRADIENT_METHODS + ATTENTION_METHODS:
            rows = _gradient_rows(engine, runner, cases, granularity, tgt)
        elif runner.name == "occlusion":
            rows = _occlusion_rows(engine, runner, cases, granularity, tgt, encode)
        elif runner.name in ("lime", "kernel_shap"):
            rows = _surrogate_rows(engine, runner, cases, granularity, tgt, encode)
        else:
            rows = _random_rows(runner, cases, granularity, tgt)
        seconds = (time.perf_counter() - start) / len(cases)
        for case, (matrix, delta) in zip(cases, rows, strict=True):
            g = case.gen
            units, kinds = columns(case, granularity)
            if tgt.kind == "sequence_logprob":
                t_units, t_lp = [g.text], [float(sum(g.logprobs[: case.rows]))]
            else:
                t_units, t_lp = (
                    list(g.tokens[: case.rows]),
                    [float(v) for v in g.logprobs[: case.rows]],
                )
            results.append(
                GenerationAttribution(
                    prompt=g.prompt,
                    continuation=g.text,
                    method=runner.name,
                    target=tgt.name,
                    granularity=granularity,
                    source_units=units,
                    source_kinds=kinds,
                    target_units=t_units,
                    target_logprobs=t_lp,
                    matrix=matrix,
                    params=dict(runner.params),
                    delta=delta,
                    seconds=seconds,
                    model=gen.name,
                    chat=gen.chat,
                )
            )
    n = len(cases)
    ordered = [results[m * n + c] for c in range(n) for m in range(len(runners))]
    return GenerationSet(ordered)
