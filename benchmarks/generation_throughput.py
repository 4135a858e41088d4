"""Generation attribution throughput: explainlm vs Captum's LLM attribution, same model and inputs.

Prompts are ``Review: <SST-2 test sentence>\\nSentiment:``; each gets a fixed continuation (the
model's greedy ``--continuation-tokens`` tokens, generated once) that every tool explains by
teacher forcing. Prints explanations/s (one explanation = one prompt's full matrix) and ratios.

    python benchmarks/generation_throughput.py --n 8
    python benchmarks/generation_throughput.py --n 8 --json --tools explainlm,captum
    python benchmarks/generation_throughput.py --n 1 --warmup 0 --tools explainlm,inseq   # pip install inseq
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import platform
import sys
import time
from typing import Any

import numpy as np
import torch

from explainlm.datasets import read_table
from explainlm.generation import explain_generation
from explainlm.models import load_model
from explainlm.paths import data_dir


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--warmup", type=int, default=2, help="prompts used only to warm up each tool")
    ap.add_argument("--continuation-tokens", type=int, default=10)
    ap.add_argument("--ig-steps", type=int, default=50)
    ap.add_argument("--tools", default="explainlm,captum")
    ap.add_argument("--max-batch-tokens", type=int, default=8192)
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
        data_dir() / "sst2" / "test.tsv", text_column="sentence", limit=args.n + args.warmup
    ).texts
    prompts = [f"Review: {s}\nSentiment:" for s in sentences]
    warm, prompts = prompts[: args.warmup], prompts[args.warmup :]
    conts = [
        g.token_ids for g in gen.generate(warm + prompts, max_new_tokens=args.continuation_tokens)
    ]
    warm_conts, conts = conts[: args.warmup], conts[args.warmup :]
    results: list[dict[str, Any]] = []

    def record(tool: str, method: str, mode: str, seconds: float) -> None:
        eps = len(prompts) / seconds
        results.append(
            {
                "tool": tool,
                "method": method,
                "mode": mode,
                "n": len(prompts),
                "seconds": round(seconds, 3),
                "explanations_per_second": eps,
            }
        )
        log(f"{tool:>10} {method:<22} {mode:<34} {eps:8.3f}/s ({seconds:.1f} s)")

    ours: dict[str, Any] = {}
    if "explainlm" in tools:
        configs = [
            ("occlusion", "word, removed (default)", {}, "word"),
            (
                "occlusion",
                "token, pad (Captum's definition)",
                {"occlusion": {"replace": "pad"}},
                "token",
            ),
            (
                "integrated_gradients",
                f"{args.ig_steps} steps, all targets batched",
                {"integrated_gradients": {"steps": args.ig_steps}},
                "token",
            ),
        ]
        for method, mode, params, gran in configs:

            def run(
                ps: list[str], cs: list[list[int]], method=method, params=params, gran=gran
            ) -> Any:
                return explain_generation(
                    ps,
                    gen,
                    [method],
                    target_texts=cs,
                    granularity=gran,
                    method_params=params,
                    max_batch_tokens=args.max_batch_tokens,
                    **check,
                )

            run(warm, warm_conts)
            res, sec = timed(lambda run=run: run(prompts, conts))
            ours[(method, gran)] = res
            record("explainlm", method, mode, sec)

    captum_fa: list[np.ndarray] = []
    if "captum" in tools:
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

        def captum_fa_run(ps: list[str], cs: list[list[int]]) -> list[np.ndarray]:
            out = []
            for p, c in zip(ps, cs, strict=True):
                inp = TextTokenInput(p, w.tokenizer, baselines=w.pad_token_id)
                out.append(
                    fa.attribute(inp, target=torch.tensor(c)).token_attr.detach().cpu().numpy()
                )
            return out

        def captum_ig_run(ps: list[str], cs: list[list[int]]) -> None:
            for p, c in zip(ps, cs, strict=True):
                inp = TextTokenInput(p, w.tokenizer)
                lig.attribute(inp, target=torch.tensor(c), n_steps=args.ig_steps)

        captum_fa_run(warm, warm_conts)
        captum_fa, sec = timed(lambda: captum_fa_run(prompts, conts))
        record("captum", "occlusion", "LLMAttribution(FeatureAblation), pad", sec)
        captum_ig_run(warm[:1], warm_conts[:1])
        _, sec = timed(lambda: captum_ig_run(prompts, conts))
        record(
            "captum",
            "integrated_gradients",
            f"LLMGradientAttribution(LIG), {args.ig_steps} steps",
            sec,
        )

    if "inseq" in tools:
        # Inseq runs one attribution per generated step, batch size 1 (its documented default for
        # decoder-only models). Its occlusion zeroes a token's embedding and scores the target's
        # probability (not log-probability), so only the timing is comparable, not the values.
        import inseq

        def inseq_run(ps: list[str], cs: list[list[int]], model: Any, **kw: Any) -> None:
            for p, c in zip(ps, cs, strict=True):
                full = p + w.tokenizer.decode(c)
                model.attribute(input_texts=p, generated_texts=full, show_progress=False, **kw)

        for method, mode, kw in [
            ("occlusion", "inseq occlusion (embedding zeroed, target prob)", {}),
            (
                "integrated_gradients",
                f"inseq IG, {args.ig_steps} steps",
                {"n_steps": args.ig_steps},
            ),
        ]:
            model = inseq.load_model(w.model, method, tokenizer=w.tokenizer)
            if args.warmup:
                inseq_run(warm[:1], warm_conts[:1], model, **kw)
            _, sec = timed(lambda model=model, kw=kw: inseq_run(prompts, conts, model, **kw))
            record("inseq", method, mode, sec)

    by = {(r["tool"], r["method"], r["mode"]): r["explanations_per_second"] for r in results}
    ratios = {}
    for (tool, method, mode), eps in by.items():
        if tool != "explainlm":
            continue
        for peer_tool in ("captum", "inseq"):
            peer = [v for (t, m, _), v in by.items() if t == peer_tool and m == method]
            if peer:
                ratios[f"{method} / {mode} vs {peer_tool}"] = eps / peer[0]
    agreement = None
    if captum_fa and ("occlusion", "token") in ours:
        n_prompt = [len(w.tokenizer(p)["input_ids"]) for p in prompts]
        diffs = [
            float(np.nanmax(np.abs(np.array([r[:k] for r in a.matrix], dtype=float) - ref)))
            for a, ref, k in zip(ours[("occlusion", "token")], captum_fa, n_prompt, strict=True)
        ]
        agreement = {
            "row0_max_abs_diff": max(
                float(np.max(np.abs(np.array(a.matrix[0][:k], dtype=float) - ref[0])))
                for a, ref, k in zip(ours[("occlusion", "token")], captum_fa, n_prompt, strict=True)
            ),
            "all_rows_max_abs_diff": max(diffs),
        }
    doc = {
        "device": args.device
        if args.device != "cpu"
        else f"cpu ({platform.processor() or platform.machine()})",
        "date": datetime.date.today().isoformat(),
        "torch_threads": torch.get_num_threads(),
        "continuation_tokens": args.continuation_tokens,
        "results": results,
        "ratios": ratios,
        "captum_agreement": agreement,
    }
    if args.json:
        print(json.dumps(doc))
    else:
        print(
            f"device {doc['device']}, {len(prompts)} prompts, {args.continuation_tokens} generated tokens each"
        )
        print(f"{'tool':>10} {'method':<22} {'mode':<40} {'expl/s':>9}")
        for r in results:
            print(
                f"{r['tool']:>10} {r['method']:<22} {r['mode']:<40} {r['explanations_per_second']:9.3f}"
            )
        for k, v in ratios.items():
            print(f"ratio explainlm / {k}: {v:.1f}x")
        print(f"agreement with Captum FeatureAblation: {agreement}")


if __name__ == "__main__":
    main()
