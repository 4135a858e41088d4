"""Combine saved global results (``explainlm global … -o X.json``) into one self-contained HTML report.

Usage: ``python benchmarks/global_report.py OUT.html "TITLE" importance.json surrogate.json sensitivity.json``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    from explainlm.behaviour.importance import GlobalImportance
    from explainlm.behaviour.report import combined_html
    from explainlm.behaviour.sensitivity import SensitivityResult
    from explainlm.behaviour.surrogate import SurrogateResult

    out, title, *paths = sys.argv[1:]
    kinds = {c.format: c for c in (GlobalImportance, SurrogateResult, SensitivityResult)}
    results = []
    for p in paths:
        fmt = json.loads(Path(p).read_text())["format"]
        results.append(kinds[fmt].load(p))
    Path(out).write_text(combined_html(results, title), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
