"""Terminal rendering of what-if results (counterfactuals, attacks, anchors)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from explainlm.cli.common import console, err_console


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


def print_counterfactuals(result: Any) -> None:
    """Each text, its prediction, and its counterfactuals with the edits marked."""
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


def print_attacks(result: Any) -> None:
    """Each text, whether the attack succeeded, and the adversarial text with the edits marked."""
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


def print_anchors(result: Any) -> None:
    """Each text with its anchor highlighted, the rule, precision and coverage."""
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
