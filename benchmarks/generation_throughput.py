"""Generation attribution throughput: explainlm vs Captum's LLM attribution, same model and inputs.

Prompts are ``Review: <SST-2 test sentence>\\nSentiment:``; each gets a fixed continuation (the
model's greedy ``--continuation-tokens`` tokens, generated once) that every tool explains by
teacher forcing. Contenders run in interleaved rounds (benchmarks/rounds.py: A B C, A B C, …); the
report gives explanations/s (one explanation = one prompt's full matrix), the median of the
per-round ratios with min/max, the load average and the CPU flags.

    python benchmarks/generation_throughput.py --n 8
    python benchmarks/generation_throughput.py --n 8 --json --tools explainlm,captum
    python benchmarks/generation_throughput.py --n 1 --warmup 0 --tools explainlm,inseq   # pip install inseq
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explainlm.datasets import read_table
from explainlm.generation import explain_generation
from explainlm.models import load_model
from explainlm.paths import data_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import Contender, format_table, interleave  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def explainlm_contenders(gen: Any, prompts: list[str], conts: list[Any], args: Any, check: dict):
    configs = [
        ("explainlm occlusion word", "occlusion", {}, "word"),
        ("explainlm occlusion token pad", "occlusion", {"occlusion": {"replace": "pad"}}, "token"),
        (
            f"explainlm IG {args.ig_steps}",
            "integrated_gradients",
            {"integrated_gradients": {"steps": args.ig_steps}},
            "token",
        ),
    ]
    out = []
    for name, method, params, gran in configs:

        def run(method: str = method, params: dict = params, gran: str = gran) -> Any:
            return explain_generation(
                prompts,
                gen,
                [method],
                target_texts=conts,
                granularity=gran,
                method_params=params,
                max_batch_tokens=args.max_batch_tokens,
                precision=args.precision,
                **check,
            )

        out.append(Contender(name, run, len(prompts)))
    return out


def captum_contenders(w: Any, prompts: list[str], conts: list[Any], steps: int) -> list[Contender]:
    from captum.attr import (
        FeatureAblation,
        LayerIntegratedGradients,
        LLMAttribution,
        LLMGradientAttribution,
        TextTokenInput,
    )

    fa = LLMAttribution(FeatureAblation(w.model), w.tokenizer)
    lig = LLMGradientAttribution(
        LayerIntegratedGradients(w.model, w.model.model.embed_tokens), w.tokenizer
    )

    def fa_run() -> list[np.ndarray]:
        out = []
        for p, c in zip(prompts, conts, strict=True):
            inp = TextTokenInput(p, w.tokenizer, baselines=w.pad_token_id)
            out.append(fa.attribute(inp, target=torch.tensor(c)).token_attr.detach().cpu().numpy())
        return out

    def ig_run() -> None:
        for p, c in zip(prompts, conts, strict=True):
            lig.attribute(TextTokenInput(p, w.tokenizer), target=torch.tensor(c), n_steps=steps)

    return [
        Contender("captum occlusion (FeatureAblation, pad)", fa_run, len(prompts)),
        Contender(f"captum IG {steps} (LLMGradientAttribution)", ig_run, len(prompts)),
    ]


def inseq_contenders(w: Any, prompts: list[str], conts: list[Any], steps: int) -> list[Contender]:
    """Inseq runs one attribution per generated step, batch size 1 (its documented default for
    decoder-only models). Its occlusion zeroes a token's embedding and scores the target's
    probability (not log-probability), so only the timing is comparable, not the values."""
    import inseq

    out = []
    for method, kw in [("occlusion", {}), ("integrated_gradients", {"n_steps": steps})]:
        model = inseq.load_model(w.model, method, tokenizer=w.tokenizer)

        def run(model: Any = model, kw: dict = kw) -> None:
            for p, c in zip(prompts, conts, strict=True):
                full = p + w.tokenizer.decode(c)
                model.attribute(input_texts=p, generated_texts=full, show_progress=False, **kw)

        out.append(Contender(f"inseq {method}", run, len(prompts)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (after a warm-up)")
    ap.add_argument("--continuation-tokens", type=int, default=10)
    ap.add_argument("--ig-steps", type=int, default=50)
    ap.add_argument("--tools", default="explainlm,captum")
    ap.add_argument("--max-batch-tokens", type=int, default=None, help="default: measured (auto)")
    ap.add_argument("--precision", default="auto", help="explainlm's precision (auto, fp32, …)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--check",
        action="store_true",
        help="also compute explainlm's faithfulness check (off by default: the peers have none)",
    )
    args = ap.parse_args()
    check: dict[str, Any] = {}
    if "check" in inspect.signature(explain_generation).parameters:
        check["check"] = args.check
    tools = set(args.tools.split(","))

    gen = load_model("smollm2-135m", "generator", device=args.device, chat=False)
    w = gen.wrapper
    sentences = read_table(
        data_dir() / "sst2" / "test.tsv", text_column="sentence", limit=args.n
    ).texts
    prompts = [f"Review: {s}\nSentiment:" for s in sentences]
    conts = [g.token_ids for g in gen.generate(prompts, max_new_tokens=args.continuation_tokens)]
    contenders: list[Contender] = []
    if "explainlm" in tools:
        contenders += explainlm_contenders(gen, prompts, conts, args, check)
    if "captum" in tools:
        contenders += captum_contenders(w, prompts, conts, args.ig_steps)
    if "inseq" in tools:
        contenders += inseq_contenders(w, prompts, conts, args.ig_steps)
    res = interleave(contenders, args.rounds)
    names = [c.name for c in contenders]
    pairs = []
    for ours, peer_prefix in [
        ("explainlm occlusion token pad", "captum occlusion"),
        (f"explainlm IG {args.ig_steps}", "captum IG"),
        ("explainlm occlusion token pad", "inseq occlusion"),
        (f"explainlm IG {args.ig_steps}", "inseq integrated_gradients"),
    ]:
        peer = next((n for n in names if n.startswith(peer_prefix)), None)
        if ours in names and peer:
            pairs.append((ours, peer))
    doc = res.to_doc(pairs)
    doc["continuation_tokens"] = args.continuation_tokens
    doc["precision"] = args.precision
    fa_name = "captum occlusion (FeatureAblation, pad)"
    if fa_name in res.outputs and "explainlm occlusion token pad" in res.outputs:
        doc["captum_agreement"] = agreement(
            w, prompts, res.outputs["explainlm occlusion token pad"], res.outputs[fa_name]
        )
    print(json.dumps(doc, indent=1) if args.json else format_table(doc))
    if not args.json:
        print(f"agreement with Captum FeatureAblation: {doc.get('captum_agreement')}")


def agreement(w: Any, prompts: list[str], ours: Any, captum_fa: list[np.ndarray]) -> dict:
    """Largest |difference| between our token occlusion (pad) and Captum's FeatureAblation."""
    n_prompt = [len(w.tokenizer(p)["input_ids"]) for p in prompts]
    diffs = [
        float(np.nanmax(np.abs(np.array([r[:k] for r in a.matrix], dtype=float) - ref)))
        for a, ref, k in zip(ours, captum_fa, n_prompt, strict=True)
    ]
    return {"all_rows_max_abs_diff": max(diffs)}


if __name__ == "__main__":
    main()
