"""The language-model audits as plans (see :mod:`explainlm.audits.stages`): CrowS-Pairs, the
user's minimal pairs, BBQ and WinoBias score items by (pseudo-)log-likelihood in chunks of 64;
BOLD continues prompts and scores the continuations with a classifier in chunks of 16."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from explainlm.audits import bold as bold_mod
from explainlm.audits import lm_bias
from explainlm.audits.stages import AuditPlan, Payloads, Stage, label_for, model_labels


def lm_bias_plan(req: Any, prep: Any) -> AuditPlan:
    task = {
        "crows-pairs": lambda: lm_bias.pairs_task(prep.items, "crows-pairs"),
        "pairs": lambda: lm_bias.pairs_task(prep.items, "pairs"),
        "bbq": lambda: lm_bias.bbq_task(prep.items),
        "winobias": lambda: lm_bias.winobias_task(prep.items),
    }[req.benchmark]()
    index = {k: i for i, k in enumerate(task.keys)}

    def load(models: Any) -> dict[str, Any]:
        from explainlm.audits.lm_scoring import TextScorer

        lm = language_model(models, req.model)
        return {"scorer": TextScorer(lm, max_batch_tokens=req.max_batch_tokens)}

    def stages(facts: dict[str, Any]) -> list[Stage]:
        def score(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
            return lm_bias.score_chunk(m["scorer"], task, index, part)

        return [Stage(f"scoring {task.name}", task.keys, score)]

    def summarise(facts: dict[str, Any], payloads: Payloads) -> dict[str, Any]:
        got = payloads[f"scoring {task.name}"]
        doc = lm_bias.summarise(
            task,
            [got[k] for k in task.keys],
            correction=req.correction,
            n_boot=req.n_boot,
            seed=req.seed,
        )
        doc["scorer"] = facts["scorer"]
        doc["kind"] = "lm-bias"
        return doc

    return AuditPlan(
        load, lambda loaded: {"scorer": loaded["scorer"].describe()}, stages, summarise
    )


def language_model(models: Any, name: str) -> Any:
    from explainlm.audits.lm_scoring import load_language_model
    from explainlm.models.sources import resolve_source

    source = getattr(models, "source", lambda n: n)(name)  # a server's configured name → path
    if resolve_source(source).kind == "causal_lm":
        return models.task(name, "generator").wrapper
    return load_language_model(source)


def bold_plan(req: Any, prep: Any) -> AuditPlan:
    prompts = list(prep.items)
    keys = [f"{i:06d}" for i in range(len(prompts))]

    def load(models: Any) -> dict[str, Any]:
        return {
            "generator": models.task(req.model, "generator"),
            "classifier": models.task(req.classifier),
        }

    def stages(facts: dict[str, Any]) -> list[Stage]:
        def generate(m: dict[str, Any], part: list[str]) -> Mapping[str, Any]:
            return bold_mod.generate_chunk(
                m["generator"],
                m["classifier"],
                [prompts[int(k)] for k in part],
                part,
                label=facts["label"],
                max_new_tokens=req.max_new_tokens,
                seed=req.seed,
            )

        return [Stage("generating", keys, generate, 16)]

    def summarise(facts: dict[str, Any], payloads: Payloads) -> dict[str, Any]:
        got = payloads["generating"]
        doc = bold_mod.summarise_bold(
            prompts,
            [got[k] for k in keys],
            label=facts["label"],
            min_group_size=req.min_group_size,
            n_boot=req.n_boot,
            n_perm=max(req.n_perm, 100),
            seed=req.seed,
        )
        doc["classifier"] = req.classifier
        doc["kind"] = "lm-bias"
        return doc

    def facts(loaded: dict[str, Any]) -> dict[str, Any]:
        return {"label": label_for(model_labels(loaded), req.label)}

    return AuditPlan(load, facts, stages, summarise)
