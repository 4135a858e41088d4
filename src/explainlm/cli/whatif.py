"""``explainlm counterfactual``, ``explainlm attack``, ``explainlm anchor``: what-if analyses.

Thin adapters over :mod:`explainlm.services.whatif`: options → request → ``run`` → rendering.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from explainlm.cli.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    console,
    emit_json,
    err_console,
    split_list,
)
from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS

TextsArg = Annotated[list[str] | None, typer.Argument(help="Texts (or use --input).")]
InputOpt = Annotated[
    str | None,
    typer.Option("--input", "-i", help="TSV/CSV/JSONL/TXT file of texts (dataset mode)."),
]
TextColumnOpt = Annotated[str, typer.Option(help="Text column of --input.")]
LabelColumnOpt = Annotated[
    str | None, typer.Option(help="Gold-label column of --input (names or 0-based indices).")
]
LabelNamesOpt = Annotated[
    str | None,
    typer.Option(help="Names of gold label indices, comma-separated (e.g. negative,positive)."),
]
LimitOpt = Annotated[int | None, typer.Option(help="Only the first N texts.")]
LabelsOpt = Annotated[str | None, typer.Option(help="Zero-shot labels, comma-separated.")]
TemplateOpt = Annotated[str | None, typer.Option(help="Zero-shot prompt template with {text}.")]
BudgetTokensOpt = Annotated[int, typer.Option(help="Token budget per pass (rows × padded length).")]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]
ChunkOpt = Annotated[int, typer.Option(help="Texts per saved chunk (dataset mode).")]
ResumeOpt = Annotated[
    str | None, typer.Option(help="Continue an interrupted run (its own settings are used).")
]
HtmlOpt = Annotated[
    str | None, typer.Option("--html", help="Write a self-contained HTML report here.")
]
SimilarityOpt = Annotated[str, typer.Option(help="Sentence encoder for similarity.")]


def _common(
    texts: list[str] | None,
    model: str,
    input_file: str | None,
    text_column: str,
    label_column: str | None,
    label_names: str | None,
    limit: int | None,
    labels: str | None,
    template: str | None,
    max_batch_tokens: int,
    seed: int,
    chunk_size: int,
    similarity_model: str,
) -> dict[str, Any]:
    return {
        "model": model,
        "texts": list(texts or []),
        "input": input_file,
        "text_column": text_column,
        "label_column": label_column,
        "label_names": split_list(label_names),
        "limit": limit,
        "labels": split_list(labels),
        "template": template.replace("\\n", "\n") if template else None,
        "max_batch_tokens": max_batch_tokens,
        "seed": seed,
        "chunk_size": chunk_size,
        "similarity_model": similarity_model,
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
        fields = {k: v for k, v in rec.params.items() if k in cls.model_fields}
        fields["resume"] = rec.run_id
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
        from explainlm.whatif.html import CSS, summary_table

        sections = [f"<style>{CSS}</style>"]
        if len(result.items) > 1:
            sections.append("<h2>Summary</h2>" + summary_table(result.summary))
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


def _probs(probs: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in probs.items())


def _diff_text(original: str, item: dict[str, Any]) -> Text:
    """The edited text with new words green and each replaced word shown struck out before it."""
    text = Text()
    edited, cursor = item["text"], 0
    for e, (s, t) in sorted(zip(item["edits"], item["spans"], strict=True), key=lambda p: p[1][0]):
        text.append(edited[cursor:s])
        text.append(e["original"], style="red strike")
        if e["replacement"]:
            text.append(" ")
            text.append(e["replacement"], style="bold green")
        cursor = t
    text.append(edited[cursor:])
    return text


def _summary(result: Any) -> None:
    if len(result.items) < 2:
        return
    table = Table(title=f"{result.kind} summary", show_header=True)
    table.add_column("measure")
    table.add_column("mean [95% CI]")
    table.add_column("n", justify="right")
    for k, v in result.summary.items():
        if isinstance(v, dict) and "mean" in v:
            cell = (
                "n/a" if v["mean"] is None else f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
            )
            table.add_row(k.replace("_", " "), cell, str(v["n"]))
        else:
            table.add_row(k.replace("_", " "), str(v), "")
    console.print(table)
    if result.resumed:
        err_console.print(f"resumed: {result.resumed} texts were already done in {result.run_id}")


def _render_counterfactuals(result: Any) -> None:
    for r in result.items:
        console.print(Text(f"\n{r['text']}", style="bold"))
        console.print(f"predicted {r['label']} ({_probs(r['probs'])})", markup=False)
        if r.get("skipped"):
            console.print(Text(f"  skipped: {r['skipped']}", style="yellow"))
            continue
        if not r["counterfactuals"]:
            console.print(
                Text(f"  no counterfactual within {r['queries']} queries", style="yellow")
            )
        for c in r["counterfactuals"]:
            console.print(Text("  → ") + _diff_text(r["text"], c))
            ppl = "" if c["perplexity"] is None else f" · perplexity {c['perplexity']:.1f}"
            sim = "" if c["similarity"] is None else f" · similarity {c['similarity']:.3f}"
            console.print(
                Text(
                    f"    {c['label']} ({_probs(c['probs'])}) · {c['n_edits']} edit(s){ppl}{sim}",
                    style="dim",
                )
            )
    for cs in result.extra.get("contrast_sets", []):
        d = cs["drop"]
        console.print(
            f"\ncontrast set ({cs['n_contrast']} edited texts) for {cs['model']}: accuracy "
            f"{cs['original_accuracy']['mean']:.3f} → {cs['contrast_accuracy']['mean']:.3f}, drop "
            f"{d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]",
            markup=False,
        )
    _summary(result)


def _render_attacks(result: Any) -> None:
    for r in result.items:
        console.print(Text(f"\n{r['text']}", style="bold"))
        style = {"succeeded": "green", "failed": "yellow", "skipped": "dim"}[r["status"]]
        why = f" ({r['skipped']})" if r.get("skipped") else ""
        console.print(Text(f"  {r['status']}{why} · {r['queries']} queries", style=style))
        if r.get("adversarial"):
            from explainlm.whatif.text import Edit, WordText

            new = WordText.of(r["text"]).apply([Edit.from_dict(e) for e in r["edits"]])
            item = {"text": new.text, "edits": r["edits"], "spans": new.spans}
            console.print(Text("  → ") + _diff_text(r["text"], item))
            sim = "" if r["similarity"] is None else f" · similarity {r['similarity']:.3f}"
            console.print(
                Text(
                    f"    {r['label']} → {r['new_label']} ({_probs(r['new_probs'])}) · "
                    f"{100 * r['perturbed_fraction']:.0f}% of words{sim}",
                    style="dim",
                )
            )
    _summary(result)


def _render_anchors(result: Any) -> None:
    from explainlm.whatif.text import WordText

    for r in result.items:
        wt = WordText.of(r["text"])
        text = Text(r["text"], style="bold")
        for i in r.get("indices") or []:
            s, e = wt.spans[i]
            text.stylize("bold black on yellow", s, e)
        console.print(Text("\n") + text)
        if r.get("skipped"):
            console.print(Text(f"  skipped: {r['skipped']}", style="yellow"))
            continue
        console.print(f"  {r['rule']}", markup=False)
        flag = "" if r["meets_threshold"] else " · below the precision threshold"
        console.print(
            Text(
                f"    precision {r['precision']:.3f} [{r['precision_low']:.3f}, {r['precision_high']:.3f}] "
                f"({100 * r['confidence']:.0f}% confidence, {r['n_samples']} samples) · coverage "
                f"{r['coverage']:.3f} · {r['queries']} queries{flag}",
                style="dim",
            )
        )
    _summary(result)


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
    max_queries: Annotated[int, typer.Option(help="Model queries per text.")] = 400,
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
            help="Model to evaluate on the contrast set (repeatable; needs --label-column).",
        ),
    ] = None,
    input_file: InputOpt = None,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = None,
    label_names: LabelNamesOpt = None,
    limit: LimitOpt = None,
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    max_batch_tokens: BudgetTokensOpt = DEFAULT_MAX_BATCH_TOKENS,
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
    from explainlm.services.whatif import CounterfactualRequest
    from explainlm.whatif.html import counterfactual_section

    fields = _common(
        texts, model, input_file, text_column, label_column, label_names, limit, labels,
        template, max_batch_tokens, seed, chunk_size, similarity_model,
    )  # fmt: skip
    fields.update(
        target=target,
        margin=margin,
        n=n,
        max_edits=max_edits,
        max_queries=max_queries,
        positions=positions,
        per_source=per_source,
        sources=split_list(sources),
        beam=beam,
        expand=expand,
        lm=lm,
        embeddings=embeddings,
        infill_prompt=infill_prompt.replace("\\n", "\n"),
        quality=not no_quality,
        evaluate=list(evaluate or []),
    )
    result = _execute(CounterfactualRequest, fields, resume, device)
    _finish(result, as_json, html, _render_counterfactuals, counterfactual_section)


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
    max_batch_tokens: BudgetTokensOpt = DEFAULT_MAX_BATCH_TOKENS,
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
    from explainlm.services.whatif import AttackRequest
    from explainlm.whatif.html import attack_section

    fields = _common(
        texts, model, input_file, text_column, label_column, label_names, limit, labels,
        template, max_batch_tokens, seed, chunk_size, similarity_model,
    )  # fmt: skip
    fields.update(
        kind=kind,
        max_queries=max_queries,
        min_similarity=min_similarity,
        max_perturbed=max_perturbed,
        ranking=ranking,
        neighbours=neighbours,
        min_cosine=min_cosine,
        top_k=top_k,
        max_edit_distance=max_edit_distance,
    )
    result = _execute(AttackRequest, fields, resume, device)
    _finish(result, as_json, html, _render_attacks, attack_section)


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
    max_samples: Annotated[int, typer.Option(help="Model queries per text.")] = 5000,
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
    max_batch_tokens: BudgetTokensOpt = DEFAULT_MAX_BATCH_TOKENS,
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
    from explainlm.services.whatif import AnchorRequest
    from explainlm.whatif.html import anchor_section

    fields = _common(
        texts, model, input_file, text_column, None, None, limit, labels, template,
        max_batch_tokens, seed, chunk_size, "minilm-l6",
    )  # fmt: skip
    fields.update(
        threshold=threshold,
        delta=delta,
        epsilon=epsilon,
        batch_size=batch_size,
        beam_size=beam_size,
        max_anchor_size=max_anchor_size,
        perturbation=perturbation,
        p=p,
        max_samples=max_samples,
        validation_samples=validation_samples,
        llm_candidates=llm_candidates,
        lm=lm,
    )
    result = _execute(AnchorRequest, fields, resume, device)
    _finish(result, as_json, html, _render_anchors, anchor_section)


def register(app: typer.Typer) -> None:
    app.command("counterfactual")(counterfactual_cmd)
    app.command("attack")(attack_cmd)
    app.command("anchor")(anchor_cmd)
