"""The case studies' recipes: per domain, its defaults (:data:`DOMAINS`) and the steps that build
its document (:data:`RECIPES`). The plain-language summary and the key figures are written by
:mod:`explainlm.services.case_summary` from the sections, so every sentence quotes a measured
number."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from explainlm.errors import UserError
from explainlm.services.base import ServiceContext

FINANCE_TEMPLATE = (
    "Financial news: {text}\nFor the company, is this news positive, negative or neutral?\nAnswer:"
)
TOS_TEMPLATE = (
    "Terms of service clause: {text}\nIs this clause fair or unfair to the consumer?\nAnswer:"
)

BASE = {"faithfulness_limit": 30, "importance_limit": 120}
DOMAINS: dict[str, dict[str, Any]] = {
    "medicine": {"dataset": "medical-abstracts", "model": "models/minilm-medical",
                 "train_limit": 2000, "epochs": 2, "max_length": 128, "eval_limit": 300,
                 "surrogate_limit": 300, "bios_model": "models/minilm-biosbias",
                 "faithfulness_limit": 20, "importance_limit": 60,
                 "title": "Medical abstracts: which condition is this abstract about?"},
    "finance": {"dataset": "financial-phrasebank", "model": "models/minilm-finance",
                "train_limit": 2000, "epochs": 2, "max_length": 64, "eval_limit": 600,
                "surrogate_limit": 600,
                "title": "Financial news: is this sentence good or bad news for the company?"},
    "law": {"dataset": "unfair-tos", "model": "models/minilm-tos", "train_limit": 2000,
            "epochs": 2, "max_length": 64, "eval_limit": 800, "surrogate_limit": 800,
            "title": "Terms of service: is this clause unfair to the consumer?"},
    "moderation": {"dataset": "hatexplain", "model": "models/minilm-hatexplain",
                   "train_limit": 2000, "epochs": 2, "max_length": 128, "eval_limit": 400,
                   "surrogate_limit": 400, "train_split": "val",
                   "title": "Content moderation: is this post toxic?"},
}  # fmt: skip
DOMAINS = {name: {**BASE, **d} for name, d in DOMAINS.items()}


@dataclass(frozen=True)
class Recipe:
    """A domain's checks (no model) and its ``build(req, ctx) -> document``."""

    domain: str
    check: Callable[[Any], None]
    build: Callable[[Any, ServiceContext], dict[str, Any]]


def _check_data(req: Any) -> None:
    from explainlm.datasets import load_dataset

    name = DOMAINS[req.domain]["dataset"]
    try:
        load_dataset(name, split="test", data_dir=req.data_dir, limit=1)
    except UserError as e:
        raise UserError(f"case {req.domain}: {e}") from None


def _examples(req: Any, limit: int | None) -> list[Any]:
    from explainlm.datasets import load_dataset

    name = DOMAINS[req.domain]["dataset"]
    return load_dataset(name, split="test", data_dir=req.data_dir, limit=limit)


def step(doc: dict[str, Any], key: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run one step, keep its section under ``key`` and its wall time under ``timings``."""
    import time

    started = time.perf_counter()
    out = fn(*args)
    doc.setdefault("timings", {})[key] = time.perf_counter() - started
    return out


def _core(req: Any, ctx: ServiceContext) -> tuple[dict[str, Any], list[Any], list[dict]]:
    """The steps every case shares: model, test metrics, explanations, faithfulness."""
    from explainlm.services.case_steps import (
        ensure_model,
        explain_section,
        faithfulness_section,
        measure_on_test,
        pick_examples,
    )

    dataset = DOMAINS[req.domain]["dataset"]
    doc: dict[str, Any] = {"domain": req.domain, "title": DOMAINS[req.domain]["title"],
                           "dataset": dataset, "n_test_available": len(_examples(req, None))}  # fmt: skip
    source = f"{dataset}:{DOMAINS[req.domain].get('train_split', 'train')}"
    doc["model"] = step(doc, "model", ensure_model, ctx, req, source)
    examples = _examples(req, req.eval_limit)
    doc["metrics"], preds = step(doc, "metrics", measure_on_test, ctx, req.model, examples,
                                 doc["model"]["labels"], req)  # fmt: skip
    shown = pick_examples(examples, preds, req.explain_right, req.explain_wrong)
    doc["explanations"] = step(doc, "explanations", explain_section, ctx, req.model,
                               [examples[i].text for i in shown],
                               [examples[i].label for i in shown])  # fmt: skip
    doc["faithfulness"] = step(doc, "faithfulness", faithfulness_section, ctx, req.model,
                               dataset, req.faithfulness_limit, req)  # fmt: skip
    return doc, examples, preds


def build_medicine(req: Any, ctx: ServiceContext) -> dict[str, Any]:
    from explainlm.services.case_sections import bios_section, importance_section, surrogate_section
    from explainlm.services.case_summary import finish

    doc, _examples_, _preds = _core(req, ctx)
    doc["importance"] = step(doc, "importance", importance_section, ctx, req, doc["dataset"])
    doc["surrogate"] = step(doc, "surrogate", surrogate_section, ctx, req, doc["dataset"])
    doc["bios"] = step(doc, "bios", bios_section, ctx, req)
    return finish(doc)


def build_finance(req: Any, ctx: ServiceContext) -> dict[str, Any]:
    from explainlm.services.case_sections import (
        compression_section,
        counterfactual_section,
        llm_section,
    )
    from explainlm.services.case_summary import finish

    doc, examples, preds = _core(req, ctx)
    labels = doc["model"]["labels"]
    doc["llm"] = step(doc, "llm", llm_section, ctx, req, examples, preds, labels, FINANCE_TEMPLATE)
    wrong = [e.text for e, p in zip(examples, preds, strict=True) if p["label"] != e.label]
    right = [e.text for e, p in zip(examples, preds, strict=True) if p["label"] == e.label]
    texts = (right[: (req.counterfactuals + 1) // 2] + wrong)[: req.counterfactuals]
    if texts:
        doc["counterfactuals"] = step(doc, "counterfactuals", counterfactual_section, ctx, req,
                                      texts)  # fmt: skip
    if req.variants:
        doc["compression"] = step(doc, "compression", compression_section, ctx, req,
                                  doc["dataset"])  # fmt: skip
    return finish(doc)


def build_law(req: Any, ctx: ServiceContext) -> dict[str, Any]:
    from explainlm.services.case_sections import counterfactual_section, llm_section
    from explainlm.services.case_summary import finish

    doc, examples, preds = _core(req, ctx)
    labels = doc["model"]["labels"]
    doc["llm"] = step(doc, "llm", llm_section, ctx, req, examples, preds, labels, TOS_TEMPLATE)
    flagged = [e.text for e, p in zip(examples, preds, strict=True) if p["label"] == "unfair"]
    if flagged and req.counterfactuals:
        doc["counterfactuals"] = step(doc, "counterfactuals", counterfactual_section, ctx, req,
                                      flagged[: req.counterfactuals], "fair")  # fmt: skip
    return finish(doc)


def build_moderation(req: Any, ctx: ServiceContext) -> dict[str, Any]:
    from explainlm.services.case_moderation import (
        fairness_section,
        mass_section,
        plausibility_section,
    )
    from explainlm.services.case_summary import finish

    doc, examples, _preds = _core(req, ctx)
    doc["plausibility"] = step(doc, "plausibility", plausibility_section, ctx, req, doc["dataset"])
    doc["fairness"] = step(doc, "fairness", fairness_section, ctx, req, examples, str(req.output))
    doc["identity_mass"] = step(doc, "identity_mass", mass_section, ctx, req, examples)
    return finish(doc)


RECIPES: dict[str, Recipe] = {
    "medicine": Recipe("medicine", _check_data, build_medicine),
    "finance": Recipe("finance", _check_data, build_finance),
    "law": Recipe("law", _check_data, build_law),
    "moderation": Recipe("moderation", _check_data, build_moderation),
}
