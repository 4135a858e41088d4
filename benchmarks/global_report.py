"""Combine saved global results (``explainlm global … -o X.json``) into one self-contained HTML report.

Usage: ``python benchmarks/global_report.py NAME "TITLE" importance.json [surrogate.json] [sensitivity.json]``

It writes ``benchmarks/reports/NAME.html`` (``--out-dir`` to change). That folder is ignored by git:
reports are regenerated with this command, never committed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPORTS = Path(__file__).resolve().parent / "reports"


def main() -> None:
    from explainlm.behaviour.importance import GlobalImportance
    from explainlm.behaviour.report import combined_html
    from explainlm.behaviour.sensitivity import SensitivityResult
    from explainlm.behaviour.surrogate import SurrogateResult

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="Report name: writes OUT_DIR/NAME.html.")
    ap.add_argument("title", help="Title of the report.")
    ap.add_argument("results", nargs="+", help="Saved .json results of explainlm global.")
    ap.add_argument("--out-dir", type=Path, default=REPORTS, help=f"Default: {REPORTS}.")
    args = ap.parse_args()

    kinds = {c.format: c for c in (GlobalImportance, SurrogateResult, SensitivityResult)}
    results = []
    for p in args.results:
        fmt = json.loads(Path(p).read_text())["format"]
        results.append(kinds[fmt].load(p))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"{args.name}.html"
    out.write_text(combined_html(results, args.title), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
