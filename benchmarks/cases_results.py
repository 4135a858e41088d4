"""Print a case study's key figures as the Markdown table of ``benchmarks/RESULTS.md``, read from
the run store (the same stored document the case's HTML report was rendered from).

    .venv/bin/python benchmarks/cases_results.py RUN_ID [--store PATH]

The numbers use the report's own formatting (``explainlm.report.case.num``), so a figure in
RESULTS and in the report is the same string (tests/test_cases.py checks it).
"""

from __future__ import annotations

import argparse
from typing import Any

from explainlm.report.case import num
from explainlm.services.case import load_case
from explainlm.store import open_store


def results_markdown(store: Any, run_id: str) -> str:
    """The Markdown section of one case run: settings, the key figures with CIs, the evidence."""
    doc = load_case(store, run_id)
    s = doc.get("settings", {})
    model = doc.get("model", {})
    lines = [
        f"### Case study: {doc['domain']} (run `{run_id}`)",
        "",
        f"Data `{doc['dataset']}` (test split: {doc['metrics']['n']} of "
        f"{doc.get('n_test_available')} texts measured); model `{model.get('path')}` "
        f"({'trained in this run' if model.get('trained_now') else 'reused'}; training: "
        f"{model.get('params')}); {doc.get('seconds', 0) / 60:.1f} min in all; "
        f"n_boot {s.get('n_boot')}, seed {s.get('seed')}.",
        "",
        "| figure | value | 95% CI |",
        "| --- | --- | --- |",
    ]
    for f in doc["figures"]:
        ci = "" if f["low"] is None else f"{num(f['low'])}–{num(f['high'])}"
        lines.append(f"| {f['label']} | {num(f['value'])} | {ci} |")
    lines += ["", *(f"* **{x['question']}** {x['answer']}" for x in doc["summary"]), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run_id")
    ap.add_argument("--store", default=None)
    args = ap.parse_args()
    print(results_markdown(open_store(args.store), args.run_id))


if __name__ == "__main__":
    main()
