"""``precision="auto"`` and the pass size: decided by a one-time measurement, cached per machine.

How ``auto`` decides (see docs/performance.md):

1. **Eligibility.** bfloat16 is a candidate on a GPU that supports it and on a CPU with AMX
   (``amx_bf16``) or AVX-512-BF16 (``avx512_bf16``); elsewhere only float32 and (forward passes on
   CPU) dynamic int8 are. Models under :data:`MIN_PARAMETERS` parameters stay float32 unmeasured:
   their matrix products are too small for the bf16/int8 kernels to pay, and a measurement of
   millisecond passes would decide by noise.
2. **Measurement** (once per machine and model, cached in ``$EXPLAINLM_HOME/autotune.json``):
   a synthetic batch of the model's own kind is timed in interleaved rounds (the best of each
   candidate's rounds counts): forward passes in fp32, bf16 weights, bf16 autocast and int8;
   forward + backward passes in fp32, bf16 weights and bf16 autocast. A candidate replaces fp32 only
   if it is at least :data:`SPEEDUP_MARGIN` times faster, and a forward candidate only if its class
   probabilities on a few fixed sentences (:data:`AGREEMENT_TEXTS`, in the task's template) stay
   within :data:`MAX_PROB_DIFF` of float32's. Then the pass size (rows × padded tokens) is chosen
   among :data:`BUDGETS` for the chosen gradient and forward precisions (another size than the
   default only if it is :data:`SPEEDUP_MARGIN` faster per token), and the fixed cost of one
   forward pass is measured (a one-row pass, in tokens' worth): the engine weighs it when it
   decides whether reusing KV-cached prefixes beats full forwards (:mod:`explainlm.engine.prefix`).
   Entries measured by an older version (:data:`CACHE_VERSION`) are measured again.
3. ``EXPLAINLM_PRECISION`` (``fp32``, ``bf16``, ``int8``) pins what ``auto`` means on a machine
   without measuring (the test suite pins ``fp32``: its reference comparisons are float32).
4. The cache key is the machine (CPU model or GPU name, the relevant CPU flags, torch version and
   thread count) and the model (name, class, parameter count, task); a different machine, thread
   count or model measures again.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.models.precision import (
    PrecisionPlan,
    check_precision,
    model_kind,
    pass_context,
    variant_task,
)
from explainlm.models.wrapper import Encoding
from explainlm.paths import home_dir

log = logging.getLogger(__name__)

MIN_PARAMETERS = 10_000_000
SPEEDUP_MARGIN = 1.10
MAX_PROB_DIFF = 0.01  # a forward candidate moving any class probability more than this is refused
AGREEMENT_TEXTS = (
    "A gorgeous, witty, seductive movie.",
    "The plot is dull and the acting is even worse.",
    "It is neither as funny nor as moving as it wants to be.",
    "An uneven but often rewarding film about loss.",
    "I would not recommend this to anyone.",
    "The service was quick and the food arrived hot.",
    "Patient reports mild chest pain after exercise.",
    "The committee will meet again next Tuesday.",
)
BUDGETS = (1024, 2048, 4096)
MEASURE_BUDGET = 2048
SEQ_LEN = 32  # tokens per synthetic row: a typical sentence inside its template
ROUNDS = 2
CACHE_FILE = "autotune.json"
CACHE_VERSION = 3  # 2: the per-pass overhead; 3: pass sizes for the plan's precisions, with margin
CPU_FLAGS = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")


# ------------------------------------------------------------------------------------- machine
def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def bf16_hardware(device: torch.device) -> str | None:
    """What makes bfloat16 fast here: ``cuda``, ``amx_bf16``, ``avx512_bf16``; ``None``: nothing."""
    if device.type == "cuda":
        return "cuda" if torch.cuda.is_bf16_supported() else None
    flags = cpu_flags()
    return next((f for f in ("amx_bf16", "avx512_bf16") if f in flags), None)


def machine(device: torch.device) -> dict[str, Any]:
    """The machine's identity for the cache, and what is recorded with benchmark numbers."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "device": device.type,
        "name": name,
        "cpu_flags": sorted(f for f in CPU_FLAGS if f in cpu_flags()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "bf16_hardware": bf16_hardware(device),
    }


def model_key(task: Any) -> str:
    model = task.wrapper.model
    n = sum(p.numel() for p in model.parameters())
    return f"{task.wrapper.name}|{type(model).__name__}|{n}|{task.task}|{task.rows_per_item()}"


# --------------------------------------------------------------------------------------- cache
def cache_path() -> Path:
    return home_dir() / CACHE_FILE


def _load_cache() -> dict[str, Any]:
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(entries: dict[str, Any]) -> None:
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
    tmp.replace(path)


def _cache_key(task: Any) -> str:
    return json.dumps([machine(task.wrapper.device), model_key(task)], sort_keys=True)


# ----------------------------------------------------------------------------------- resolving
def resolve_precision(
    precision: str | PrecisionPlan, task: Any, *, refresh: bool = False
) -> PrecisionPlan:
    """The plan for ``precision`` on ``task``'s model: explicit ones as given; ``auto`` from the
    cached measurement (measured now if there is none, or ``refresh``)."""
    if isinstance(precision, PrecisionPlan):
        return precision
    check_precision(precision)
    pinned = os.environ.get("EXPLAINLM_PRECISION", "auto")
    if precision == "auto" and pinned != "auto":  # the machine's pinned meaning of auto
        plan = PrecisionPlan.fixed(check_precision(pinned))
        return PrecisionPlan(**{**plan.to_dict(), "requested": "auto", "source": "environment"})
    if getattr(task.wrapper, "kind", None) == "black_box":  # no weights: predictions only
        return PrecisionPlan(requested=precision, source="default", reason="black-box model")
    if precision != "auto":
        return PrecisionPlan.fixed(precision)
    device = task.wrapper.device
    n_params = sum(p.numel() for p in task.wrapper.model.parameters())
    if n_params < MIN_PARAMETERS:
        return PrecisionPlan(
            requested="auto", source="default", reason=f"{n_params:,} parameters: fp32"
        )
    key = _cache_key(task)
    entries = _load_cache()
    if key in entries and entries[key].get("version") == CACHE_VERSION and not refresh:
        return PrecisionPlan(**{**entries[key]["plan"], "source": "cached"})
    log.warning(
        "precision auto: measuring %s on this machine once (cached in %s; about a minute)",
        task.wrapper.name,
        cache_path(),
    )
    measured = measure(task)
    plan = decide(measured, bf16_hardware(device), device)
    entries[key] = {
        "plan": plan.to_dict(),
        "measured": measured,
        "date": time.time(),
        "version": CACHE_VERSION,
    }
    _save_cache(entries)
    return plan


def choose(measured: dict[str, Any]) -> tuple[str, str]:
    """The forward and gradient candidates (e.g. ``bf16-weights``, ``fp32``) the rule picks from
    measured seconds per token: the fastest one that is :data:`SPEEDUP_MARGIN` faster than fp32
    (forward ones only within the agreement gate), with one bf16 mode for both kinds."""
    fwd, bwd = measured["forward"], measured["backward"]
    diffs = measured.get("max_prob_diff", {})
    fwd = {k: v for k, v in fwd.items() if diffs.get(k, 0.0) <= MAX_PROB_DIFF}

    def best(times: dict[str, float]) -> str:
        fastest = min(times, key=lambda k: times[k])
        return fastest if times["fp32"] / times[fastest] >= SPEEDUP_MARGIN else "fp32"

    b = best(bwd)
    f = best(fwd)
    mode = "weights"
    if b.startswith("bf16"):
        mode = b.split("-")[1]
    elif f.startswith("bf16"):
        mode = f.split("-")[1]
    if f.startswith("bf16") and f != f"bf16-{mode}":
        f = (
            f"bf16-{mode}"
            if fwd.get(f"bf16-{mode}", 1e9) * SPEEDUP_MARGIN <= fwd["fp32"]
            else "fp32"
        )
    return f, b


def choose_budget(per_token: dict[str, float]) -> int:
    """The pass size (tokens) with the least measured time per token, if that is at least
    :data:`SPEEDUP_MARGIN` less than at the default size; else the default (a difference of a few
    per cent between sizes is noise on a shared machine, and a real workload's rows differ from the
    synthetic ones)."""
    best = min(per_token, key=lambda b: per_token[b])
    default = str(DEFAULT_MAX_BATCH_TOKENS)
    if default in per_token and per_token[default] / per_token[best] < SPEEDUP_MARGIN:
        return DEFAULT_MAX_BATCH_TOKENS
    return int(best)


def decide(measured: dict[str, Any], bf16: str | None, device: torch.device) -> PrecisionPlan:
    """The plan from measured seconds per token (see the module docstring)."""
    fwd, bwd = measured["forward"], measured["backward"]
    f, b = choose(measured)
    mode = next((c.split("-")[1] for c in (b, f) if c.startswith("bf16")), "weights")
    reason = (
        f"measured on {device.type} (bf16 hardware: {bf16 or 'none'}): gradient passes "
        f"{bwd['fp32'] / bwd[b]:.2f}x with {b}, forward passes {fwd['fp32'] / fwd[f]:.2f}x with {f}"
    )
    return PrecisionPlan(
        forward=f.split("-")[0],
        backward=b.split("-")[0],
        bf16_mode=mode,
        requested="auto",
        max_batch_tokens=int(measured["budget"]["backward"]),
        forward_batch_tokens=int(measured["budget"]["forward"]),
        pass_overhead_tokens=measured.get("pass_overhead_tokens"),
        source="measured",
        reason=reason,
    )


# --------------------------------------------------------------------------------- measurement
def _synthetic_batch(task: Any, rows: int) -> Any:
    w = task.wrapper
    vocab = int(w.model.get_input_embeddings().num_embeddings)
    gen = torch.Generator().manual_seed(0)
    encs = []
    for _ in range(rows):
        ids = torch.randint(min(1000, vocab - 1), vocab, (SEQ_LEN,), generator=gen).tolist()
        n = len(ids)
        encs.append(Encoding("", "", ids, [""] * n, [None] * n, [True] * n, [-1] * n, []))
    return w.collate(encs)


def _pass_fn(task: Any, candidate: str, backward: bool, rows: int) -> Callable[[], None]:
    kind, _, mode = candidate.partition("-")
    plan = PrecisionPlan(kind, "fp32" if kind == "int8" else kind, mode or "weights")
    pkind = "backward" if backward else "forward"
    runner = variant_task(task, model_kind(plan, pkind))
    batch = _synthetic_batch(task, rows)
    device = task.wrapper.device
    dtype = next(runner.wrapper.model.parameters()).dtype if kind == "bf16" else torch.float32

    def run() -> None:
        with pass_context(plan, pkind, device):
            if not backward:
                with torch.no_grad():
                    runner.class_scores(batch)
                return
            emb = task.wrapper.embed(batch.input_ids).detach().float().requires_grad_(True)
            scores = runner.class_scores(batch, inputs_embeds=emb.to(dtype))
            torch.autograd.grad(scores.float().sum(), emb)

    return run


def _time_interleaved(
    fns: dict[str, Callable[[], None]], device: torch.device, warmup: bool = True
) -> dict[str, float]:
    """Best wall time of each function over :data:`ROUNDS` interleaved rounds (after a warm-up)."""
    times = {k: float("inf") for k in fns}
    for fn in fns.values() if warmup else ():
        fn()
    for _ in range(ROUNDS):
        for k, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[k] = min(times[k], time.perf_counter() - start)
    return times


def candidates(device: torch.device) -> tuple[list[str], list[str]]:
    """Forward and gradient candidates on this device."""
    bf16 = ["bf16-weights", "bf16-autocast"] if bf16_hardware(device) else []
    int8 = ["int8"] if device.type == "cpu" else []
    return ["fp32", *bf16, *int8], ["fp32", *bf16]


def agreement(task: Any, candidate: str) -> float:
    """Largest |Δ probability| of any class between ``candidate`` and float32 on
    :data:`AGREEMENT_TEXTS` (forward passes)."""
    if candidate == "fp32":
        return 0.0
    kind, _, mode = candidate.partition("-")
    plan = PrecisionPlan(kind, "fp32" if kind == "int8" else kind, mode or "weights")
    encodings = task.encode(list(AGREEMENT_TEXTS))
    with torch.no_grad():
        ref = task.scores(encodings).softmax(-1)
        with pass_context(plan, "forward", task.wrapper.device):
            out = variant_task(task, model_kind(plan, "forward")).scores(encodings).softmax(-1)
    return float((out - ref).abs().max())


def measure(task: Any) -> dict[str, Any]:
    """Seconds per token of each candidate's forward and forward + backward passes, and the
    seconds per token of the fastest ones at each budget of :data:`BUDGETS`."""
    device = task.wrapper.device
    fwd_c, bwd_c = candidates(device)
    per_row = SEQ_LEN * task.rows_per_item()
    rows = max(1, MEASURE_BUDGET // per_row)
    tokens = rows * per_row
    out: dict[str, Any] = {"seq_len": SEQ_LEN, "rows": rows}
    for name, cands, backward in (("forward", fwd_c, False), ("backward", bwd_c, True)):
        fns = {c: _pass_fn(task, c, backward, rows) for c in cands}
        out[name] = {k: v / tokens for k, v in _time_interleaved(fns, device).items()}
    out["max_prob_diff"] = {c: agreement(task, c) for c in fwd_c}
    out["budget"] = {}
    out["per_token_by_budget"] = {}
    for name, backward, chosen in zip(
        ("forward", "backward"), (False, True), choose(out), strict=True
    ):
        fns = {str(b): _pass_fn(task, chosen, backward, max(1, b // per_row)) for b in BUDGETS}
        times = _time_interleaved(fns, device, warmup=False)  # the variant is warm already
        per_token = {str(b): times[str(b)] / (max(1, b // per_row) * per_row) for b in BUDGETS}
        out["per_token_by_budget"][name] = {"precision": chosen, **per_token}
        out["budget"][name] = choose_budget(per_token)
    out["pass_overhead_tokens"] = _pass_overhead(task, out, per_row)
    return out


def _pass_overhead(task: Any, measured: dict[str, Any], per_row: int) -> float:
    """The fixed cost of one forward pass in tokens of the chosen forward precision: a one-row
    pass's time less its tokens' share at the per-token cost of the chosen pass size."""
    chosen = measured["per_token_by_budget"]["forward"]
    per_token = chosen[str(measured["budget"]["forward"])]
    fns = {"one row": _pass_fn(task, chosen["precision"], False, 1)}
    one_row = _time_interleaved(fns, task.wrapper.device)["one row"]
    return max(0.0, one_row / per_token - per_row)
