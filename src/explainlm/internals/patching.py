"""Activation patching and causal tracing (Meng et al. 2022, ROME; Vig et al. 2020).

Run the model on a clean prompt and on a corrupted one, then rerun the corrupted prompt with one
clean activation copied in (one layer × position at a time) and measure how much of the clean
prediction comes back:

    restored = (m_patched - m_corrupt) / (m_clean - m_corrupt)

where ``m`` is the target token's next-token probability (or the target-minus-foil logit
difference). Corruption is token substitution (a second prompt of the same token length) or
Gaussian noise on the subject tokens' embeddings with a scale of 3 × the embedding standard
deviation, as in ROME. Many patches run in one forward pass, one row per patch.

>>> from explainlm.models import ModelWrapper
>>> w = ModelWrapper.load("smollm2-135m")                                     # doctest: +SKIP
>>> r = trace(w, "The Eiffel Tower is located in the city of", target=" Paris",
...           subject="The Eiffel Tower", component="resid")                  # doctest: +SKIP
>>> len(r.grid), len(r.grid[0])          # layers × positions                  # doctest: +SKIP
(30, 11)
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from explainlm.errors import UserError
from explainlm.internals.hooks import Architecture, architecture, hooks
from explainlm.internals.lens import target_token_id
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS

COMPONENTS = {"resid": "resid_post", "attn": "attn.out", "mlp": "mlp.out"}
METRICS = ("prob", "logit_diff")
Patch = Mapping[str, Sequence[int]]  # point name -> positions to copy from the clean run


@dataclass
class TraceResult:
    """Restored fraction per layer (rows) × patched position (columns, see ``positions``)."""

    tokens: list[str]
    component: str
    layers: list[int]
    grid: list[list[float]]
    metric: str
    target: str
    clean: float
    corrupt: float
    corruption: str
    corrupted_positions: list[int]
    foil: str | None = None
    window: int = 1
    notes: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # token index of each grid column

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def best(self) -> tuple[int, int, float]:
        """(layer, position, restored) of the largest effect."""
        cells = [(v, i, j) for i, row in enumerate(self.grid) for j, v in enumerate(row)]
        v, i, j = max(cells)
        return self.layers[i], self.positions[j], v


def _metric_fn(
    wrapper: Any, target_id: int, foil_id: int | None, metric: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(logits: torch.Tensor) -> torch.Tensor:  # [R, T, V] -> [R]
        last = logits[:, -1].float()
        if metric == "prob":
            return torch.softmax(last, -1)[:, target_id]
        assert foil_id is not None
        return last[:, target_id] - last[:, foil_id]

    return fn


def _last_only(wrapper: Any) -> dict[str, int]:
    """``logits_to_keep=1`` where the model takes it: rows × vocabulary logits stay small."""
    params = inspect.signature(wrapper.model.forward).parameters
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def run_patches(
    wrapper: Any,
    inputs: Mapping[str, torch.Tensor],
    clean: Mapping[str, torch.Tensor],
    patches: Sequence[Patch],
    metric: Callable[[torch.Tensor], torch.Tensor],
    *,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    arch: Architecture | None = None,
    progress: Any = None,
    seconds_per_row: float | None = None,
) -> list[float]:
    """The metric of the corrupted run with each patch applied (one row per patch).

    ``inputs`` is ``{"input_ids": [1, T]}`` or ``{"inputs_embeds": [1, T, d]}`` (the corrupted
    input); ``clean`` maps each patched point to its clean activation ``[T, d]``. An empty patch
    gives the corrupted run itself. ``progress`` (a :class:`~explainlm.progress.Progress`) gets a
    stage of one unit per patch, estimated from ``seconds_per_row``, advanced after every pass.
    """
    if progress is not None:
        estimate = None if seconds_per_row is None else seconds_per_row * len(patches)
        progress.start("patching", total=len(patches), estimate_s=estimate)
    arch = arch or architecture(wrapper.model)
    x = next(iter(inputs.values()))
    n_tok = x.shape[1]
    per = max(1, max_batch_tokens // n_tok)
    out: list[float] = []
    for start in range(0, len(patches), per):
        chunk = patches[start : start + per]
        rows: dict[str, tuple[list[int], list[int]]] = {}
        for r, patch in enumerate(chunk):
            for point, positions in patch.items():
                rr, pp = rows.setdefault(point, ([], []))
                rr += [r] * len(positions)
                pp += list(positions)

        def make(point: str, rr: list[int], pp: list[int]) -> Callable[[torch.Tensor], Any]:
            ri = torch.tensor(rr, dtype=torch.long, device=x.device)
            pi = torch.tensor(pp, dtype=torch.long, device=x.device)
            src = clean[point].to(x.device)

            def fn(t: torch.Tensor) -> torch.Tensor:
                t = t.clone()
                t[ri, pi] = src[pi].to(t.dtype)
                return t

            return fn

        fns = {p: make(p, rr, pp) for p, (rr, pp) in rows.items()}
        args = {k: v.expand(len(chunk), *v.shape[1:]) for k, v in inputs.items()}
        mask = torch.ones((len(chunk), n_tok), dtype=torch.long, device=x.device)
        with torch.no_grad(), hooks(wrapper, fns, arch=arch):
            logits = wrapper.forward(attention_mask=mask, **args, **_last_only(wrapper)).logits
        out += metric(logits).tolist()
        if progress is not None:
            progress.advance(len(chunk))
    return out


def _subject_positions(enc: Any, subject: str) -> list[int]:
    start = enc.text.find(subject)
    if start < 0:
        raise UserError(f"the subject {subject!r} is not in the prompt {enc.text!r}")
    end = start + len(subject)
    return [i for i, o in enumerate(enc.offsets) if o is not None and o[0] < end and o[1] > start]


def trace(
    wrapper: Any,
    clean: str,
    *,
    target: str,
    corrupt: str | None = None,
    subject: str | None = None,
    component: str = "resid",
    metric: str = "prob",
    foil: str | None = None,
    noise: float = 3.0,
    window: int = 1,
    seed: int = 0,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    positions: Sequence[int] | None = None,
    progress: Any = None,
) -> TraceResult:
    """Causal tracing of ``clean`` → ``target``: the restored fraction per layer × position.

    Give either ``corrupt`` (a prompt with the same number of tokens, e.g. another subject) or
    ``subject`` (a substring of ``clean`` whose token embeddings get noise of ``noise`` × the
    embedding std). ``component`` is ``resid`` (block output), ``attn`` or ``mlp``; ``window``
    patches that many consecutive layers around each layer at once (ROME uses 10 for attn/mlp).
    ``metric="logit_diff"`` needs a ``foil`` token (``m = logit(target) - logit(foil)``).
    ``positions`` restricts the patched token positions (negative counts from the end); the grid
    costs layers × positions rows of the prompt's length, so restrict it for long prompts.
    ``progress`` (a :class:`~explainlm.progress.Progress`) shows the patches run, with an estimate.
    """
    _check_trace_options(wrapper, component, metric, foil, corrupt, subject)
    arch = architecture(wrapper.model)
    tid, notes = target_token_id(wrapper, target)
    fid = None
    if foil is not None:
        fid, more = target_token_id(wrapper, foil)
        notes += more
    enc = wrapper.encode([clean], chat=False)[0]
    ids = torch.tensor([enc.input_ids], device=wrapper.device)
    inputs, changed, how = _corrupted_inputs(wrapper, enc, ids, corrupt, subject, noise, seed)
    points = [f"layers.{i}.{COMPONENTS[component]}" for i in range(arch.n_layers)]
    acts: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[[torch.Tensor], None]:
        return lambda t: acts.__setitem__(name, t[0].detach())

    fn = _metric_fn(wrapper, tid, fid, metric)
    mask = torch.ones_like(ids)
    began = time.perf_counter()
    with torch.no_grad(), hooks(wrapper, {p: keep(p) for p in points}, arch=arch):
        m_clean = float(fn(wrapper.forward(input_ids=ids, attention_mask=mask).logits)[0])
    seconds_per_row = time.perf_counter() - began  # one row of the prompt: the estimate's unit
    cols = list(range(len(enc))) if positions is None else [p % len(enc) for p in positions]
    n = len(cols)
    patches: list[Patch] = [{}]
    for i in range(arch.n_layers):
        lo, hi = max(0, i - window // 2), min(arch.n_layers, i - (-window // 2))
        for p in cols:
            patches.append({points[j]: [p] for j in range(lo, hi)})
    values = run_patches(
        wrapper, inputs, acts, patches, fn, max_batch_tokens=max_batch_tokens, arch=arch,
        progress=progress, seconds_per_row=seconds_per_row,
    )  # fmt: skip
    m_corrupt = values[0]
    grid = _restored_fractions(values, m_clean, arch.n_layers, n, notes)
    return TraceResult(
        list(enc.tokens),
        component,
        list(range(arch.n_layers)),
        grid,
        metric,
        target,
        m_clean,
        m_corrupt,
        how,
        changed,
        foil,
        window,
        notes,
        cols,
    )


def _check_trace_options(
    wrapper: Any,
    component: str,
    metric: str,
    foil: str | None,
    corrupt: str | None,
    subject: str | None,
) -> None:
    if wrapper.kind != "causal_lm":
        raise UserError("causal tracing needs a causal language model")
    if component not in COMPONENTS:
        raise UserError(f"unknown component {component!r}; use {', '.join(COMPONENTS)}")
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}; use {', '.join(METRICS)}")
    if metric == "logit_diff" and foil is None:
        raise UserError("metric logit_diff needs a foil token (--foil)")
    if (corrupt is None) == (subject is None):
        raise UserError(
            "give exactly one of a corrupted prompt (--corrupt) or a subject (--subject)"
        )


def _corrupted_inputs(
    wrapper: Any,
    enc: Any,
    ids: torch.Tensor,
    corrupt: str | None,
    subject: str | None,
    noise: float,
    seed: int,
) -> tuple[dict[str, torch.Tensor], list[int], str]:
    """The corrupted run's model inputs, the changed token positions and how they were changed."""
    if corrupt is not None:
        cenc = wrapper.encode([corrupt], chat=False)[0]
        if len(cenc) != len(enc):
            raise UserError(
                f"the corrupted prompt is {len(cenc)} tokens, the clean one {len(enc)}: token "
                "substitution needs the same length"
            )
        changed = [
            i for i, (a, b) in enumerate(zip(enc.input_ids, cenc.input_ids, strict=True)) if a != b
        ]
        inputs = {"input_ids": torch.tensor([cenc.input_ids], device=wrapper.device)}
        return inputs, changed, f"tokens: {corrupt!r}"
    assert subject is not None
    changed = _subject_positions(enc, subject)
    with torch.no_grad():
        emb = wrapper.embed(ids)
        std = float(wrapper.embedding_layer.weight.float().std())
        gen = torch.Generator().manual_seed(seed)
        eps = torch.randn((len(changed), emb.shape[-1]), generator=gen) * noise * std
        emb[0, changed] = emb[0, changed] + eps.to(emb.device, emb.dtype)
    return {"inputs_embeds": emb}, changed, f"noise {noise:g}×std ({std:.4g}) on {subject!r}"


def _restored_fractions(
    values: Sequence[float], m_clean: float, n_layers: int, n_positions: int, notes: list[str]
) -> list[list[float]]:
    """(m(patched) − m(corrupt)) / (m(clean) − m(corrupt)) per layer × position; ``values[0]`` is
    the corrupted run, then the patches layer-major."""
    m_corrupt = values[0]
    denom = m_clean - m_corrupt
    if abs(denom) < 1e-6:
        notes.append("the corruption barely changes the metric: restored fractions are unstable")
    scale = denom if abs(denom) > 1e-12 else 1e-12
    return [
        [(values[1 + i * n_positions + p] - m_corrupt) / scale for p in range(n_positions)]
        for i in range(n_layers)
    ]
