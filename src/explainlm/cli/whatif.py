"""``explainlm counterfactual``, ``explainlm attack``, ``explainlm anchor``: what-if analyses.

Thin adapters over :mod:`explainlm.services.whatif`: options → request → ``run`` → rendering.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from explainlm.cli.common import (
    DEFAULT_MODEL,
    BudgetOpt,
    DeviceOpt,
    HtmlOpt,
    JsonOpt,
    LabelsOpt,
    LimitOpt,
    ModelOpt,
    TemplateOpt,
    TextColumnOpt,
    TextsArg,
    emit_json,
    err_console,
    split_list,
)
from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS

InputOpt = Annotated[
    str | None,
    typer.Option("--input", "-i", help="TSV/CSV/JSONL/TXT file of texts (dataset mode)."),
]
LabelColumnOpt = Annotated[
    str | None, typer.Option(help="Gold-label column of --input (names or 0-based indices).")
]
LabelNamesOpt = Annotated[
    str | None,
    typer.Option(help="Names of gold label indices, comma-separated (e.g. negative,positive)."),
]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]
ChunkOpt = Annotated[int, typer.Option(help="Texts per saved chunk (dataset mode).")]
ResumeOpt = Annotated[
    str | None, typer.Option(help="Continue an interrupted run (its own settings are used).")
]
SimilarityOpt = Annotated[str, typer.Option(help="Sentence encoder for similarity.")]
QueriesOpt = Annotated[int, typer.Option(help="Model queries per text.")]


def _common(options: dict[str, Any]) -> dict[str, Any]:
    """The request fields every what-if command shares, from the command's options (its
    ``locals()``); anchors have no gold-label or similarity options."""
    template = options["template"]
    return {
        "model": options["model"],
        "texts": list(options["texts"] or []),
        "input": options["input_file"],
        "text_column": options["text_column"],
        "label_column": options.get("label_column"),
        "label_names": split_list(options.get("label_names")),
        "limit": options["limit"],
        "labels": split_list(options["labels"]),
        "template": template.replace("\\n", "\n") if template else None,
        "max_batch_tokens": options["max_batch_tokens"],
        "seed": options["seed"],
        "chunk_size": options["chunk_size"],
        "similarity_model": options.get("similarity_model", "minilm-l6"),
    }


def _execute(cls: Any, fields: dict[str, Any], resume: str | None, device: str | None) -> Any:
    """Build the request (before any model loads), run it with a terminal bar, return the result."""
    from explainlm.progress import TerminalProgress
    from explainlm.services.base import LocalModels, ServiceContext, build_request
    from explainlm.services.whatif import run
    from explainlm.store import open_store

    store = open_store()
    if resume:  # the run's own settings win: nothing has to be repeated on the command line
        rec = store.get_run(resume)
        given = {k: fields[k] for k in cls.finish_only if fields.get(k)}  # e.g. new --evaluate
        fields = {k: v for k, v in rec.params.items() if k in cls.model_fields}
        fields.update(given, resume=rec.run_id)
    request = build_request(cls, **fields)
    ctx = ServiceContext(
        store=store, progress=TerminalProgress(), models=LocalModels(device), source="cli"
    )
    result = run(request, ctx)
    if not request.input and all(item.get("skipped") for item in result.items):
        reasons = "; ".join(
            f"text {i + 1} {item['skipped']}" for i, item in enumerate(result.items)
        )
        raise UserError(f"nothing to analyse: {reasons}")
    return result


def _finish(result: Any, as_json: bool, html: str | None, render: Any, section: Any) -> None:
    if html:
        from explainlm.report.html import page, write_path
        from explainlm.whatif.html import CSS, contrast_section, summary_table

        sections = [f"<style>{CSS}</style>"]
        if len(result.items) > 1:
            sections.append("<h2>Summary</h2>" + summary_table(result.summary))
        if result.extra.get("contrast_sets"):
            sections.append(contrast_section(result.extra["contrast_sets"]))
        sections.append(section(result.items))
        title = {"counterfactual": "Counterfactuals", "attack": "Adversarial examples"}.get(
            result.kind, "Anchors"
        )
        path = write_path(
            html, page(title, sections, {"model": result.model, "run": result.run_id})
        )
    if as_json:
        emit_json(result.to_json_doc())
    else:
        render(result)
    if html:
        err_console.print(f"report written to {path}", soft_wrap=True, markup=False)


def counterfactual_cmd(
    texts: TextsArg = None,
    model: ModelOpt = DEFAULT_MODEL,
    target: Annotated[
        str | None, typer.Option(help="Label to reach (default: any other label).")
    ] = None,
    margin: Annotated[
        float | None, typer.Option(help="Instead of a flip: raise the objective by this much.")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Counterfactuals per text.")] = 3,
    max_edits: Annotated[int, typer.Option(help="Most words edited.")] = 4,
    max_queries: QueriesOpt = 400,
    positions: Annotated[int, typer.Option(help="Most important words considered.")] = 6,
    per_source: Annotated[int, typer.Option(help="Candidate words per source and position.")] = 6,
    sources: Annotated[
        str, typer.Option(help="Candidate sources: llm,embedding,delete.")
    ] = "llm,embedding,delete",
    beam: Annotated[int, typer.Option(help="Beam width.")] = 4,
    expand: Annotated[int, typer.Option(help="Best single edits per position combined.")] = 3,
    lm: Annotated[str, typer.Option(help="LLM for infilling and perplexity.")] = "smollm2-135m",
    embeddings: Annotated[
        str, typer.Option(help="Model whose input embeddings give neighbours.")
    ] = "minilm-l6",
    infill_prompt: Annotated[
        str, typer.Option(help="LLM prompt before the left context ({label}: the label to reach).")
    ] = "Here is a {label} text:\\n",
    no_quality: Annotated[
        bool, typer.Option("--no-quality", help="Skip perplexity and similarity.")
    ] = False,
    evaluate: Annotated[
        list[str] | None,
        typer.Option(
            "--evaluate",
            help="Model to evaluate on the contrast set (repeatable; needs --label-column; with "
            "--resume, the finished run's counterfactuals are evaluated, nothing is searched again).",
        ),
    ] = None,
    input_file: InputOpt = None,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = None,
    label_names: LabelNamesOpt = None,
    limit: LimitOpt = None,
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    max_batch_tokens: BudgetOpt = DEFAULT_MAX_BATCH_TOKENS,
    seed: SeedOpt = 0,
    chunk_size: ChunkOpt = 32,
    resume: ResumeOpt = None,
    similarity_model: SimilarityOpt = "minilm-l6",
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Counterfactuals: the fewest word edits that change the prediction.

    Examples:

        explainlm counterfactual "The acting was wooden and the plot dull."

        explainlm counterfactual "A fine film." --target negative --n 5 --html cf.html

        explainlm counterfactual -i test.tsv --text-column sentence --label-column label --model models/minilm-sst2 --evaluate smollm2-135m
    """
    from explainlm.cli.whatif_render import print_counterfactuals
    from explainlm.services.whatif import CounterfactualRequest
    from explainlm.whatif.html import counterfactual_section

    options = dict(locals())
    own = ("target", "margin", "n", "max_edits", "max_queries", "positions", "per_source", "beam")
    own += ("expand", "lm", "embeddings")
    fields = {
        **_common(options),
        **{k: options[k] for k in own},
        "sources": split_list(sources),
        "infill_prompt": infill_prompt.replace("\\n", "\n"),
        "quality": not no_quality,
        "evaluate": list(evaluate or []),
    }
    result = _execute(CounterfactualRequest, fields, resume, device)
    _finish(result, as_json, html, print_counterfactuals, counterfactual_section)


def attack_cmd(
    texts: TextsArg = None,
    model: ModelOpt = DEFAULT_MODEL,
    kind: Annotated[
        str, typer.Option("--kind", help="word (HotFlip-style) | char (DeepWordBug-style).")
    ] = "word",
    max_queries: Annotated[int, typer.Option(help="Query budget per text.")] = 200,
    min_similarity: Annotated[
        float, typer.Option(help="Least MiniLM similarity to the original (0: off).")
    ] = 0.8,
    max_perturbed: Annotated[float, typer.Option(help="Largest fraction of words changed.")] = 0.3,
    ranking: Annotated[
        str, typer.Option(help="char attack word order: gradient | occlusion.")
    ] = "gradient",
    neighbours: Annotated[
        int, typer.Option(help="word attack: embedding neighbours per word.")
    ] = 20,
    min_cosine: Annotated[float, typer.Option(help="word attack: least neighbour cosine.")] = 0.3,
    top_k: Annotated[int, typer.Option(help="word attack: substitutions queried per step.")] = 8,
    max_edit_distance: Annotated[
        int, typer.Option(help="char attack: total edited characters.")
    ] = 30,
    input_file: InputOpt = None,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = None,
    label_names: LabelNamesOpt = None,
    limit: LimitOpt = None,
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    max_batch_tokens: BudgetOpt = DEFAULT_MAX_BATCH_TOKENS,
    seed: SeedOpt = 0,
    chunk_size: ChunkOpt = 32,
    resume: ResumeOpt = None,
    similarity_model: SimilarityOpt = "minilm-l6",
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Adversarial robustness: small word swaps or typos that change the prediction.

    Examples:

        explainlm attack "A gripping, beautifully shot film." --model models/minilm-sst2

        explainlm attack -i test.tsv --text-column sentence --label-column label --label-names negative,positive --kind char --max-queries 100
    """
    from explainlm.cli.whatif_render import print_attacks
    from explainlm.services.whatif import AttackRequest
    from explainlm.whatif.html import attack_section

    options = dict(locals())
    own = ("kind", "max_queries", "min_similarity", "max_perturbed", "ranking", "neighbours")
    own += ("min_cosine", "top_k", "max_edit_distance")
    fields = {**_common(options), **{k: options[k] for k in own}}
    result = _execute(AttackRequest, fields, resume, device)
    _finish(result, as_json, html, print_attacks, attack_section)


def anchor_cmd(
    texts: TextsArg = None,
    model: ModelOpt = DEFAULT_MODEL,
    threshold: Annotated[float, typer.Option(help="Precision the anchor must reach.")] = 0.95,
    delta: Annotated[
        float, typer.Option(help="Confidence parameter (1 - delta confidence).")
    ] = 0.1,
    epsilon: Annotated[float, typer.Option(help="KL-LUCB tolerance.")] = 0.15,
    batch_size: Annotated[int, typer.Option(help="Samples drawn per step.")] = 25,
    beam_size: Annotated[int, typer.Option(help="Candidate anchors kept per size.")] = 4,
    max_anchor_size: Annotated[int | None, typer.Option(help="Most words in an anchor.")] = None,
    perturbation: Annotated[
        str, typer.Option(help="unk | remove | llm (LLM-sampled words).")
    ] = "unk",
    p: Annotated[
        float, typer.Option("--p", help="Chance each word outside the anchor is perturbed.")
    ] = 0.5,
    max_samples: QueriesOpt = 5000,
    validation_samples: Annotated[
        int, typer.Option(help="Fresh samples for an unbiased precision estimate (0: off).")
    ] = 0,
    llm_candidates: Annotated[int, typer.Option(help="llm: replacement words per position.")] = 10,
    lm: Annotated[str, typer.Option(help="LLM for llm perturbations.")] = "smollm2-135m",
    input_file: InputOpt = None,
    text_column: TextColumnOpt = "text",
    limit: LimitOpt = None,
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    max_batch_tokens: BudgetOpt = DEFAULT_MAX_BATCH_TOKENS,
    seed: SeedOpt = 0,
    chunk_size: ChunkOpt = 32,
    resume: ResumeOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Anchors: words that pin the prediction, with precision and coverage (KL-LUCB).

    Examples:

        explainlm anchor "Not a bad film at all, really." --model models/minilm-sst2

        explainlm anchor -i test.tsv --text-column sentence --perturbation llm --html anchors.html
    """
    from explainlm.cli.whatif_render import print_anchors
    from explainlm.services.whatif import AnchorRequest
    from explainlm.whatif.html import anchor_section

    options = dict(locals())
    own = ("threshold", "delta", "epsilon", "batch_size", "beam_size", "max_anchor_size")
    own += ("perturbation", "p", "max_samples", "validation_samples", "llm_candidates", "lm")
    fields = {**_common(options), **{k: options[k] for k in own}}
    result = _execute(AnchorRequest, fields, resume, device)
    _finish(result, as_json, html, print_anchors, anchor_section)


def register(app: typer.Typer) -> None:
    app.command("counterfactual")(counterfactual_cmd)
    app.command("attack")(attack_cmd)
    app.command("anchor")(anchor_cmd)
