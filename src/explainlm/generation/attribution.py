"""Attribute every generated token to the prompt and to the tokens generated before it.

>>> from explainlm.generation import explain_generation
>>> res = explain_generation(["The capital of France is"], "smollm2-135m",
...                          methods=["occlusion"], max_new_tokens=3)        # doctest: +SKIP
>>> res[0].top_sources(0)                                                    # doctest: +SKIP
[('France', 4.1), ('capital', 1.3), ('The', 0.2)]

Every method runs through the same contract as for classification (:mod:`explainlm.methods`), on a
:class:`~explainlm.generation.GenerationEngine` whose outputs are the generated tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from explainlm.attribution import text_major
from explainlm.check import CheckConfig, as_check_config, attach_checks
from explainlm.engine.masks import check_granularity
from explainlm.errors import UserError
from explainlm.generation.engine import GenerationEngine
from explainlm.generation.result import GenerationSet
from explainlm.methods import get_method
from explainlm.models import Generator, load_model
from explainlm.models.precision import model_kind, variant_task
from explainlm.progress import Progress
from explainlm.targets import GenerationTarget


def explain_generation(
    prompts: Sequence[str] | str,
    model: str | Generator = "smollm2-135m",
    methods: Sequence[str] = ("auto",),
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
    max_batch_tokens: int | None = None,
    progress: Progress | bool | None = None,
    check: bool | CheckConfig = True,
    precision: str = "auto",
) -> GenerationSet:
    """Generate (or teacher-force ``target_texts``: texts or token ids) and attribute every token.

    ``target``: ``token_logprob`` (default), ``token_prob`` or ``sequence_logprob``; ``foil`` (a
    text) makes it contrastive: log p(generated token) − log p(foil token at the same position).
    ``check`` (default on) computes each attribution's faithfulness check into ``.check`` (the
    prompt's units ranked by their attribution summed over the generated tokens; f = the target
    summed over the generated tokens). ``precision`` (``auto``, ``fp32``, ``bf16``, ``int8``; see
    docs/performance.md) applies to generating, scoring and attributing; ``max_batch_tokens=None``
    uses the pass size measured for the device (``auto``) or the default.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    check_granularity(granularity, ("word", "token"))
    if target_texts is not None and len(target_texts) != len(prompts):
        raise UserError("give one target text per prompt")
    tgt = GenerationTarget("contrast", foil) if foil else GenerationTarget(target)
    params = dict(method_params or {})
    runners = [get_method(m, **params.get(m, {})) for m in methods]
    if not runners:
        raise UserError("no method given")
    config = as_check_config(check)
    gen = model if isinstance(model, Generator) else load_model(model, "generator", chat=chat)
    if not isinstance(gen, Generator):
        raise UserError("explain_generation needs a causal LM")
    engine = GenerationEngine(
        gen,
        tgt,
        max_batch_tokens=max_batch_tokens,
        progress=progress,
        reuse_scores=bool(config),
        precision=precision,
    )
    for r in runners:
        engine.check_method(r)
    if target_texts is not None:
        gens = engine.teacher_force(prompts, target_texts)
    else:
        plan = engine.engine.precision
        gens = variant_task(gen, model_kind(plan, "forward")).generate(
            prompts,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            seed=seed,
            max_batch_tokens=engine.engine.forward_batch_tokens,
        )
    items = engine.prepare(gens, gen.continuation_ids(foil) if foil else None)
    per_method = [r.attribute(engine, items, granularity) for r in runners]
    if config is not None:
        attach_checks(engine, items, per_method, granularity, config)
    return GenerationSet(text_major(per_method))
