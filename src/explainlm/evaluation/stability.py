"""Stability: do scores stay put under small, meaning-preserving input changes? Do methods agree?

Max-sensitivity (Yeh et al., 2019) is reported relative to the explanation's norm,
max over perturbations of ‖φ(x′) − φ(x)‖₂ / ‖φ(x)‖₂, so methods with different score scales
compare. The explained label stays fixed under the perturbation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.evaluation.base import METRICS, Case, Metric, feature_scores, prepare_items
from explainlm.explanation import Explanation
from explainlm.models.words import split_words


def relative_change(new: np.ndarray, old: np.ndarray) -> float:
    norm = float(np.linalg.norm(old))
    if norm == 0 or new.shape != old.shape:
        return float("nan")
    return float(np.linalg.norm(new - old) / norm)


def reexplain(
    engine: Engine, explanations: Sequence[Explanation], texts: Sequence[str]
) -> list[Explanation]:
    """Explain ``texts[i]`` with the method, parameters, granularity and label of ``explanations[i]``."""
    from explainlm.methods import get_method

    out: list[Explanation | None] = [None] * len(texts)
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, e in enumerate(explanations):
        key = (e.method, repr(sorted(e.params.items())), e.granularity)
        groups.setdefault(key, []).append(i)
    for (method, _, gran), idx in groups.items():
        e0 = explanations[idx[0]]
        runner = get_method(method, **e0.params)
        items = prepare_items(engine, [texts[i] for i in idx], [explanations[i].label for i in idx])
        for i, r in zip(idx, runner.attribute(engine, items, gran), strict=True):
            out[i] = r
    return out  # type: ignore[return-value]


@METRICS.register()
class MaxSensitivityNoise(Metric):
    """Relative max-sensitivity under Gaussian noise on the text tokens' embeddings.

    For each of ``samples`` draws, N(0, (``noise`` · std of the embedding matrix)²) is added to the
    embedding rows of the tokens of the evaluated texts (special tokens untouched; the rows are
    restored afterwards), and the method is re-run on the same texts.
    """

    name = "max_sensitivity_noise"
    family = "stability"
    higher_is_better = False
    needs = ("model",)
    defaults = {"samples": 5, "noise": 0.02, "seed": 0}
    citation = "Yeh et al. (2019), On the (In)fidelity and Sensitivity of Explanations"

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        if engine is None:
            raise UserError(f"{self.name} needs the model: pass classifier=")
        layer = engine.wrapper.embedding_layer
        weight = layer.weight
        ids = sorted(
            {
                int(t)
                for c in cases
                for t, sp in zip(c.item.encoding.input_ids, c.item.encoding.special, strict=True)  # type: ignore[union-attr]
                if not sp
            }
        )
        rows = torch.tensor(ids, dtype=torch.long, device=weight.device)
        saved = weight.data[rows].clone()
        sigma = float(self.params["noise"]) * float(weight.data.float().std())
        gen = torch.Generator(device="cpu").manual_seed(int(self.params["seed"]))
        worst = np.full(len(cases), -np.inf)
        exps = [c.explanation for c in cases]
        texts = [e.text for e in exps]
        try:
            for _ in range(int(self.params["samples"])):
                noise = torch.randn(saved.shape, generator=gen) * sigma
                weight.data[rows] = saved + noise.to(saved.device, saved.dtype)
                for i, (c, new) in enumerate(
                    zip(cases, reexplain(engine, exps, texts), strict=True)
                ):
                    worst[i] = max(worst[i], relative_change(feature_scores(new), c.scores))
        finally:
            weight.data[rows] = saved
        return [{"value": float(w) if np.isfinite(w) else float("nan")} for w in worst]


EDITS = {
    "lowercase": lambda t: t.lower(),
    "capitalize": lambda t: t[:1].upper() + t[1:],
    "double_space": lambda t: t.replace(" ", "  "),
    "end_punctuation": lambda t: t[:-1] + "!" if t.endswith(".") else t.rstrip() + " .",
}


def text_edits(text: str, edits: Sequence[str] = tuple(EDITS)) -> list[tuple[str, str]]:
    """Meaning-preserving edits of ``text`` that keep its word units one-to-one (name, new text)."""
    n = len(split_words(text))
    out = []
    for name in edits:
        new = EDITS[name](text)
        if new != text and len(split_words(new)) == n:
            out.append((name, new))
    return out


@METRICS.register()
class MaxSensitivityEdits(Metric):
    """Relative max-sensitivity over meaning-preserving text edits that keep the word units:
    lower-casing, capitalising the first letter, doubled spaces, ``.`` → ``!`` at the end."""

    name = "max_sensitivity_edits"
    family = "stability"
    higher_is_better = False
    needs = ("model",)
    defaults = {"edits": tuple(EDITS)}
    citation = "Yeh et al. (2019); edits as in Ivankay et al. (2022), Fooling Explanations in Text Classifiers"

    def validate(self) -> None:
        unknown = set(self.params["edits"]) - set(EDITS)
        if unknown:
            raise UserError(f"{self.name}: unknown edit(s) {', '.join(sorted(unknown))}")

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        if engine is None:
            raise UserError(f"{self.name} needs the model: pass classifier=")
        owners, exps, texts = [], [], []
        for i, c in enumerate(cases):
            if c.granularity != "word":
                continue  # token units change under case edits; words are comparable
            for _name, new in text_edits(c.explanation.text, self.params["edits"]):
                owners.append(i)
                exps.append(c.explanation)
                texts.append(new)
        worst = np.full(len(cases), -np.inf)
        if texts:
            for i, new in zip(owners, reexplain(engine, exps, texts), strict=True):
                worst[i] = max(worst[i], relative_change(feature_scores(new), cases[i].scores))
        return [{"value": float(w) if np.isfinite(w) else float("nan")} for w in worst]
