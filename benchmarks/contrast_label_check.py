"""A human check of an automatic contrast set: do the edits really change the gold label?

An automatic contrast set (``explainlm counterfactual --evaluate``, Gardner et al. 2020) assumes
that every counterfactual found against the editor carries the label the editor was moved to. This
draws a seeded sample of the contrast examples of a saved run (benchmarks/whatif_sst2.py
``--evaluate``) into a TSV with an empty ``judgment`` column for a person to fill in (``yes``: a
reader would give the edited text the assumed label; ``no``: it keeps the original label, is
neutral or is not a sentence; ``unclear``), and summarises a filled-in file: the share of ``yes``
with a Wilson interval, and the evaluated model's accuracy on the ``yes`` examples.

    python benchmarks/contrast_label_check.py sample RUN.json.gz --model MODEL --n 30 > check.tsv
    python benchmarks/contrast_label_check.py summarise check.tsv
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import sys
from collections import Counter
from pathlib import Path

FIELDS = ["run", "model", "example", "original", "edited", "assumed", "predicted", "judgment"]


def sample(path: Path, model: str, n: int, seed: int) -> None:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    (cs,) = [c for c in doc["contrast_sets"] if c["model"] == model]
    originals = {o["index"]: o["text"] for o in cs["originals"]}
    chosen = sorted(random.Random(seed).sample(range(len(cs["examples"])), n))
    out = csv.DictWriter(sys.stdout, FIELDS, delimiter="\t", lineterminator="\n")
    out.writeheader()
    for k in chosen:
        e = cs["examples"][k]
        out.writerow(
            {
                "run": path.name,
                "model": model,
                "example": k,
                "original": originals[e["index"]],
                "edited": e["text"],
                "assumed": e["label"],
                "predicted": e["predicted"],
                "judgment": "",
            }  # fmt: skip
        )


def summarise(path: Path) -> None:
    from explainlm.audits.stats import wilson_ci

    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for (run, model), group in _groups(rows).items():
        counts = Counter(r["judgment"] for r in group)
        n, yes = len(group), counts["yes"]
        low, high = wilson_ci(yes, n)
        valid = [r for r in group if r["judgment"] == "yes"]
        right = sum(r["predicted"] == r["assumed"] for r in valid)
        print(f"{run} evaluated on {model}: {n} examples judged "
              f"(yes {yes}, unclear {counts['unclear']}, no {counts['no']})")  # fmt: skip
        print(f"  edits that carry the assumed label: {yes / n:.3f} [{low:.3f}, {high:.3f}]")
        if valid:
            print(f"  {model} right on those: {right} of {len(valid)}")


def _groups(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    out: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        if r["judgment"] not in ("yes", "no", "unclear"):
            raise SystemExit(f"example {r['example']} of {r['run']}: judgment {r['judgment']!r}")
        out.setdefault((r["run"], r["model"]), []).append(r)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("run", type=Path)
    s.add_argument("--model", required=True, help="the evaluated model (as in contrast_sets)")
    s.add_argument("--n", type=int, default=30)
    s.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("summarise")
    m.add_argument("tsv", type=Path)
    args = ap.parse_args()
    if args.cmd == "sample":
        sample(args.run, args.model, args.n, args.seed)
    else:
        summarise(args.tsv)


if __name__ == "__main__":
    main()
