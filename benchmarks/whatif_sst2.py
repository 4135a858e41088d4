"""What-if measurements on SST-2: counterfactuals, attacks and anchors, with 95% bootstrap CIs.

Runs one what-if job (exactly what ``explainlm counterfactual|attack|anchor`` runs) on the first
``--limit`` sentences of SST-2 ``test.tsv`` (the GLUE dev set; Socher et al. 2013), prints the
summary, and saves every per-sentence result (gzipped JSON) so that the numbers can be re-checked
(tests/test_whatif_results.py re-predicts every reported counterfactual and adversarial text).

    python benchmarks/whatif_sst2.py --task counterfactual --model /work/models/minilm-sst2 --limit 200
    python benchmarks/whatif_sst2.py --task attack-char --model smollm2-135m --limit 100 --max-queries 100
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sst2" / "test.tsv"
OUT = ROOT / "benchmarks" / "whatif-results"

TASKS = {
    # our defaults
    "counterfactual": ("CounterfactualRequest", {}),
    "attack-word": ("AttackRequest", {"kind": "word"}),
    "attack-char": ("AttackRequest", {"kind": "char"}),
    # DeepWordBug's constraints as TextAttack's recipe sets them: no sentence-similarity bound,
    # any number of words, at most 30 edited characters, words ranked by one query each
    "attack-char-parity": (
        "AttackRequest",
        {"kind": "char", "min_similarity": 0.0, "max_perturbed": 1.0, "ranking": "occlusion"},
    ),
    "anchor": ("AnchorRequest", {}),
    "anchor-llm": ("AnchorRequest", {"perturbation": "llm"}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--task", choices=sorted(TASKS), required=True)
    ap.add_argument("--model", default="/work/models/minilm-sst2")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--max-queries", type=int, default=None, help="attack/counterfactual budget")
    ap.add_argument("--max-samples", type=int, default=None, help="anchor budget")
    ap.add_argument("--validation-samples", type=int, default=None)
    ap.add_argument("--chunk-size", type=int, default=50)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--resume", default=None, help="continue this stored run")
    ap.add_argument(
        "--evaluate",
        action="append",
        default=[],
        help="counterfactuals: evaluate this model on the contrast set (repeatable; with --resume "
        "of a finished run, nothing is searched again)",
    )
    ap.add_argument(
        "--partial",
        nargs="+",
        default=None,
        help="write the results of the texts these stored runs finished so far, in this order (an "
        "interrupted run; or runs over consecutive slices, --offset, merged into one)",
    )
    ap.add_argument(
        "--offset",
        type=int,
        default=0,
        help="start at sentence OFFSET + 1 (a slice to run in a second process; merge with --partial)",
    )
    args = ap.parse_args()

    from explainlm.progress import TerminalProgress
    from explainlm.services import whatif
    from explainlm.services.base import LocalModels, ServiceContext, build_request

    cls_name, extra = TASKS[args.task]
    fields = {
        "model": args.model,
        "input": str(sliced(args.offset) if args.offset else DATA),
        "text_column": "sentence",
        "limit": args.limit,
        "chunk_size": args.chunk_size,
        **extra,
    }
    if cls_name != "AnchorRequest":
        fields.update(label_column="label", label_names=["negative", "positive"])
    if args.max_queries is not None:
        fields["max_queries"] = args.max_queries
    if args.evaluate:
        fields["evaluate"] = args.evaluate
    if args.max_samples is not None:
        fields["max_samples"] = args.max_samples
    if args.validation_samples is not None:
        fields["validation_samples"] = args.validation_samples
    from explainlm.store import open_store

    store = open_store()  # chunks are saved as they finish: --resume / --partial use them
    if args.resume:
        fields["resume"] = args.resume
    request = build_request(getattr(whatif, cls_name), **fields)
    load_before = os.getloadavg()
    start = time.perf_counter()
    if args.partial:
        result = partial(request, store, args.partial)
    else:
        ctx = ServiceContext(store=store, progress=TerminalProgress(), models=LocalModels("cpu"))
        result = whatif.run(request, ctx)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    doc = {
        "task": args.task,
        "command": "python " + " ".join(sys.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": f"cpu, {os.cpu_count()} cores, torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}",
        "platform": platform.platform(),
        "load_before": load_before,
        "load_after": load_after,
        "wall_s": wall if not args.partial else None,
        "partial": bool(args.partial) and len(result.items) < args.limit,
        "request": request.spec(),
        **result.to_json_doc(),
    }
    out = args.out or OUT / f"{Path(args.model).name}-{args.task}-{args.limit}.json.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        json.dump(doc, fh)
    print(
        f"{args.task} · {args.model} · {args.limit} sentences · {wall:.0f} s wall · load "
        f"{load_before[0]:.1f} → {load_after[0]:.1f}"
    )
    for k, v in doc["summary"].items():
        if isinstance(v, dict) and "mean" in v:
            cell = (
                "n/a" if v["mean"] is None else f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
            )
            print(f"  {k:<28} {cell}  (n={v['n']})")
        else:
            print(f"  {k:<28} {v}")
    for cs in doc.get("contrast_sets", []):
        print(f"  contrast set (editor {cs['editor']}) evaluated on {cs['model']}:")
        print(f"    {cs['n_originals']} originals, {cs['n_contrast']} contrast examples")
        for k in ("original_accuracy", "contrast_accuracy", "drop", "consistency"):
            v = cs[k]
            print(f"    {k:<26} {v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]")
    print(f"saved {out}")


def sliced(offset: int) -> Path:
    """SST-2 test sentences from ``offset + 1`` on, as a TSV under $EXPLAINLM_HOME (not the repo)."""
    from explainlm.paths import home_dir

    lines = DATA.read_text(encoding="utf-8").splitlines(keepends=True)
    out = home_dir() / "inputs" / f"sst2-test-from-{offset + 1}.tsv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(lines[0] + "".join(lines[1 + offset :]), encoding="utf-8")
    return out


def partial(request, store, run_ids: list[str]):  # noqa: ANN001, ANN201
    """The finished texts of interrupted runs (each in text order, the runs in the order given)
    with their summary; they must be the first sentences of SST-2 test, in order."""
    from explainlm.whatif import summary as summaries
    from explainlm.whatif.anchors import AnchorResult
    from explainlm.whatif.attacks import AttackResult
    from explainlm.whatif.counterfactuals import CounterfactualResult
    from explainlm.whatif.jobs import WhatIfRun

    items, kinds, ids = [], set(), []
    for run_id in run_ids:
        rec = store.get_run(run_id)
        kinds.add(rec.command)
        ids.append(rec.run_id)
        items += [v for _, v in sorted(store.get_items(rec.run_id, rec.command).items())]
    (kind,) = kinds
    with DATA.open(encoding="utf-8") as fh:
        first = [r["sentence"].strip() for r in csv.DictReader(fh, delimiter="\t")][: len(items)]
    if [it["text"] for it in items] != first:
        raise SystemExit("the runs' texts are not the first SST-2 test sentences in order")
    if kind == "counterfactual":
        s = summaries.counterfactual_summary([CounterfactualResult.from_dict(d) for d in items])
    elif kind == "attack":
        s = summaries.attack_summary([AttackResult.from_dict(d) for d in items])
    else:
        texts = [it["text"] for it in items]
        s = summaries.anchor_summary([AnchorResult.from_dict(d) for d in items], texts)
    s["partial_of"] = request.limit
    s["runs"] = ids
    return WhatIfRun(kind, ids[0], request.model, items, s, request.spec())


if __name__ == "__main__":
    main()
