"""Markdown tables from the saved what-if results (benchmarks/whatif-results/*.json.gz).

python benchmarks/whatif_table.py
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "whatif-results"


def cell(v: dict | None, fmt: str = ".3f") -> str:
    if not v or v.get("mean") is None:
        return "–"
    return f"{v['mean']:{fmt}} [{v['low']:{fmt}}, {v['high']:{fmt}}]"


def main() -> None:
    docs = []
    for p in sorted(RESULTS.glob("*.json.gz")):
        with gzip.open(p, "rt", encoding="utf-8") as fh:
            docs.append((p.name, json.load(fh)))
    print("| file | task | n | wall s | load 1-min (start → end) |")
    print("| --- | --- | --- | --- | --- |")
    for name, d in docs:
        if "task" in d:
            print(
                f"| {name} | {d['task']} | {d['summary'].get('n_texts')} | {d['wall_s']:.0f} | "
                f"{d['load_before'][0]:.1f} → {d['load_after'][0]:.1f} |"
            )
    print("\nCounterfactuals\n")
    print(
        "| model | texts searched | success rate | edits | word distance | perplexity (edited) | perplexity (original) | perplexity ratio | similarity | queries |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for _, d in docs:
        if d.get("kind") == "counterfactual":
            s = d["summary"]
            print(
                f"| {Path(d['model']).name} | {s['n_searched']} | {cell(s['success_rate'])} | "
                f"{cell(s['edits'], '.2f')} | {cell(s['word_distance'], '.2f')} | {cell(s['perplexity'], '.0f')} | "
                f"{cell(s['original_perplexity'], '.0f')} | {cell(s['perplexity_ratio'], '.2f')} | "
                f"{cell(s['similarity'])} | {cell(s['queries'], '.1f')} |"
            )
    print("\nAttacks\n")
    print(
        "| model | tool / attack | budget | attacked | success rate | queries per success | perturbed words | similarity | accuracy under attack |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for _, d in docs:
        if d.get("kind") == "attack":
            s, req = d["summary"], d["request"]
            print(
                f"| {Path(d['model']).name} | explainlm {d['task']} | {req['max_queries']} | {s['n_attacked']} | "
                f"{cell(s['success_rate'])} | {cell(s['queries_per_success'], '.1f')} | "
                f"{cell(s['perturbed_fraction'])} | {cell(s['similarity'])} | {cell(s.get('accuracy_under_attack'))} |"
            )
        for run in d.get("runs", []):
            s = run["summary"]
            print(
                f"| {Path(d['model']).name} | TextAttack {run['recipe']} | {d['max_queries']} | {s['n_attacked']} | "
                f"{cell(s['success_rate'])} | {cell(s['queries_per_success'], '.1f')} | "
                f"{cell(s['perturbed_fraction'])} | – | – |"
            )
    print("\nAnchors\n")
    print(
        "| model | perturbation | texts | precision | coverage | anchor size | meets threshold | queries | dataset coverage |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for _, d in docs:
        if d.get("kind") == "anchor":
            s, req = d["summary"], d["request"]
            print(
                f"| {Path(d['model']).name} | {req['perturbation']} | {s['n_explained']} | {cell(s['precision'])} | "
                f"{cell(s['coverage'])} | {cell(s['size'], '.2f')} | {cell(s['meets_threshold'])} | "
                f"{cell(s['queries'], '.0f')} | {cell(s.get('dataset_coverage'))} |"
            )
    probes = [d for _, d in docs if d.get("probe")]
    if probes:
        print(
            "\nTextAttack recipes offline\n\n| recipe | builds offline | why not |\n| --- | --- | --- |"
        )
        for p in probes[0]["probe"]:
            print(f"| {p['recipe']} | {p['offline']} | {p['reason'].replace('|', '/')} |")


if __name__ == "__main__":
    main()
