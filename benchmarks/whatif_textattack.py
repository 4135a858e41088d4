"""TextAttack 0.3.11 as the peer of ``explainlm attack``: same model, same sentences, same budget.

TextAttack does not install with its dependencies in this environment (``pip install
textattack==0.3.11`` resolves to flair 0.11.3, which needs sentencepiece 0.1.95 built from source,
and newer flair needs transformers < 5). So it is installed without dependencies next to the ones its
attacks use (``benchmarks/textattack_env.sh`` makes that environment), and two things it reaches for
at import time are supplied here:

* ``flair`` (imported at module level for the part-of-speech constraint): an empty stand-in; any
  recipe that really tags parts of speech fails loudly.
* NLTK's stop-word corpus (a download, read when TextAttack is imported): scikit-learn's English
  stop-word list, the list ``explainlm attack`` uses, so both tools leave the same words alone.

It first *probes* every English classification recipe (build it against the model with network
access failing fast) and reports which build offline and why the others do not; then runs the
offline ones on the first ``--limit`` SST-2 test sentences under ``--max-queries``.

    .venv-textattack/bin/python benchmarks/whatif_textattack.py --model /work/models/minilm-sst2 --limit 200 --max-queries 100
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import sys
import time
import types
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sst2" / "test.tsv"
OUT = ROOT / "benchmarks" / "whatif-results"

RECIPES = [
    "DeepWordBugGao2018",
    "Pruthi2019",
    "HotFlipEbrahimi2017",
    "TextFoolerJin2019",
    "PWWSRen2019",
    "TextBuggerLi2018",
    "BAEGarg2019",
    "BERTAttackLi2020",
    "GeneticAlgorithmAlzantot2018",
    "FasterGeneticAlgorithmJia2019",
    "IGAWang2019",
    "Kuleshov2017",
    "PSOZang2020",
    "CheckList2020",
    "CLARE2020",
    "A2TYoo2021",
    "BadCharacters2021",
    "InputReductionFeng2018",
]
RUN = ["DeepWordBugGao2018", "Pruthi2019"]


def install_stand_ins() -> None:
    flair = types.ModuleType("flair")
    flair.__path__ = []  # type: ignore[attr-defined]
    data, models = types.ModuleType("flair.data"), types.ModuleType("flair.models")

    class Unavailable:
        def __init__(self, *a: object, **k: object) -> None:
            raise RuntimeError("flair is not installed (it needs transformers < 5)")

        @classmethod
        def load(cls, *a: object, **k: object) -> None:
            raise RuntimeError("flair is not installed (it needs transformers < 5)")

    data.Tokenizer = type("Tokenizer", (), {})  # type: ignore[attr-defined]
    data.Sentence = Unavailable  # type: ignore[attr-defined]
    models.SequenceTagger = Unavailable  # type: ignore[attr-defined]
    flair.data, flair.models = data, models  # type: ignore[attr-defined]
    sys.modules.update({"flair": flair, "flair.data": data, "flair.models": models})
    import nltk
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    class Stopwords:
        def words(self, language: str = "english") -> list[str]:
            if language != "english":
                raise LookupError(f"no stop words for {language}")
            return sorted(ENGLISH_STOP_WORDS)

    nltk.corpus.stopwords = Stopwords()


def make_wrapper(classifier: object) -> object:
    import numpy as np
    import textattack
    import torch

    from explainlm.engine import Engine

    class ExplainlmModel(textattack.models.wrappers.ModelWrapper):
        """Class probabilities from an explainlm classifier, in the engine's packed passes."""

        def __init__(self, clf: object) -> None:
            self.model = clf
            self.engine = Engine(clf)

        def __call__(self, text_list: list[str]) -> np.ndarray:
            encs = self.model.encode(list(text_list), allow_empty=True)
            items = self.engine.prepare_encodings(encs)
            return np.stack([torch.softmax(it.scores.double(), -1).numpy() for it in items])

    return ExplainlmModel(classifier)


def probe_one(name: str, classifier: object, wrapper: object) -> dict[str, str]:
    """Build one recipe against the model (network access fails within seconds)."""
    import textattack
    import textattack.attack_recipes as recipes

    socket.setdefaulttimeout(5)
    if name == "HotFlipEbrahimi2017" and hasattr(classifier.wrapper.model, "bert"):
        # gradient-based swaps need a Hugging Face wrapper (tokenizer, get_grad)
        w = classifier.wrapper
        wrapper = textattack.models.wrappers.HuggingFaceModelWrapper(w.model, w.tokenizer)
    try:
        getattr(recipes, name).build(wrapper)
        return {"recipe": name, "offline": "yes", "reason": ""}
    except Exception as e:  # noqa: BLE001 - the reason is the result
        text = str(e).strip().splitlines()
        msg = f"{type(e).__name__}: {text[0] if text else ''}"
        if "Resource" in str(e) and "not found" in str(e):  # NLTK's multi-line LookupError
            msg = (
                "LookupError: NLTK resource "
                + str(e).split("Resource")[1].split("not found")[0].strip()
            )
        return {"recipe": name, "offline": "no", "reason": msg[:240]}


def probe(model: str) -> list[dict[str, str]]:
    """Every recipe in a fresh process (a failed download leaves locks behind in a process)."""
    import subprocess

    out = []
    for name in RECIPES:
        res = subprocess.run(
            [sys.executable, __file__, "--model", model, "--probe-one", name],
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        line = [x for x in res.stdout.splitlines() if x.startswith("{")]
        out.append(
            json.loads(line[-1])
            if line
            else {
                "recipe": name,
                "offline": "no",
                "reason": res.stderr.strip().splitlines()[-1][:240],
            }
        )
    return out


def attack(wrapper: object, name: str, texts: list[str], gold: list[int], budget: int) -> dict:
    import textattack
    import textattack.attack_recipes as recipes
    from textattack.attack_results import (
        FailedAttackResult,
        SkippedAttackResult,
        SuccessfulAttackResult,
    )

    recipe = getattr(recipes, name).build(wrapper)
    recipe.goal_function.query_budget = budget
    dataset = textattack.datasets.Dataset(list(zip(texts, gold, strict=True)))
    args = textattack.AttackArgs(
        num_examples=len(texts),
        query_budget=budget,
        random_seed=0,
        silent=True,
        disable_stdout=True,
    )
    start = time.perf_counter()
    results = textattack.Attacker(recipe, dataset, args).attack_dataset()
    wall = time.perf_counter() - start
    rows = []
    for text, r in zip(texts, results, strict=True):
        kind = {
            SuccessfulAttackResult: "succeeded",
            FailedAttackResult: "failed",
            SkippedAttackResult: "skipped",
        }[type(r)]
        row = {"text": text, "status": kind, "queries": int(r.num_queries)}
        if kind == "succeeded":
            a, b = r.original_result.attacked_text, r.perturbed_result.attacked_text
            row["adversarial"] = b.text
            row["perturbed_fraction"] = len(a.all_words_diff(b)) / max(len(a.words), 1)
            row["new_label"] = int(r.perturbed_result.output)
        rows.append(row)
    return {"recipe": name, "wall_s": wall, "results": rows}


def summary(rows: list[dict]) -> dict:
    from explainlm.whatif.quality import ci

    attacked = [r for r in rows if r["status"] != "skipped"]
    won = [r for r in attacked if r["status"] == "succeeded"]
    return {
        "n_texts": len(rows),
        "n_attacked": len(attacked),
        "success_rate": ci([float(r["status"] == "succeeded") for r in attacked]),
        "queries_per_success": ci([r["queries"] for r in won]),
        "queries": ci([r["queries"] for r in attacked]),
        "perturbed_fraction": ci([r["perturbed_fraction"] for r in won]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="/work/models/minilm-sst2")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--max-queries", type=int, default=100)
    ap.add_argument("--recipes", default=",".join(RUN))
    ap.add_argument("--no-probe", action="store_true")
    ap.add_argument("--probe-one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    install_stand_ins()
    from explainlm.datasets import read_table
    from explainlm.models import load_model

    clf = load_model(args.model, device="cpu")
    wrapper = make_wrapper(clf)
    if args.probe_one:
        print(json.dumps(probe_one(args.probe_one, clf, wrapper)))
        return
    table = read_table(DATA, text_column="sentence", label_column="label", limit=args.limit)
    gold = [int(y) for y in table.labels or []]
    doc: dict = {
        "command": "python " + " ".join(sys.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_before": os.getloadavg(),
        "model": args.model,
        "limit": args.limit,
        "max_queries": args.max_queries,
    }
    if not args.no_probe:
        doc["probe"] = probe(args.model)
        for p in doc["probe"]:
            print(f"  {p['recipe']:<32} offline: {p['offline']:<3} {p['reason']}")
    doc["runs"] = []
    for name in args.recipes.split(","):
        run = attack(wrapper, name, table.texts, gold, args.max_queries)
        run["summary"] = summary(run["results"])
        doc["runs"].append(run)
        print(
            f"{name} · {args.limit} sentences · budget {args.max_queries} · {run['wall_s']:.0f} s"
        )
        for k, v in run["summary"].items():
            if isinstance(v, dict):
                cell = (
                    "n/a"
                    if v["mean"] is None
                    else f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
                )
                print(f"  {k:<22} {cell} (n={v['n']})")
            else:
                print(f"  {k:<22} {v}")
    doc["load_after"] = os.getloadavg()
    out = OUT / f"{Path(args.model).name}-textattack-{args.limit}.json.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        json.dump(doc, fh)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
