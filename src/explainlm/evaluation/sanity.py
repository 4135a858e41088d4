"""Model-parameter randomisation test (Adebayo et al., 2018), cascading from the top layer down.

On a deep copy of the classifier, the output head, then each transformer block from the last to the
first, then the embeddings are re-initialised one stage at a time (cumulatively); after each stage
the method is re-run and its scores compared with the original ones by Spearman rank correlation
(signed and absolute). A method whose scores barely change once the model is random fails the test.
:class:`ParameterRandomization` is the same check as a per-explanation metric for ``benchmark``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.evaluation.base import METRICS, Case, Metric, feature_scores
from explainlm.evaluation.stability import reexplain
from explainlm.evaluation.stats import rank_correlation


def layer_stages(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Stages top-down: ``head`` (modules outside blocks and embeddings), blocks last→first, embeddings."""
    blocks: nn.ModuleList | None = None
    block_name = ""
    for name, mod in model.named_modules():
        if (
            isinstance(mod, nn.ModuleList)
            and len(mod) > 0
            and (blocks is None or len(mod) > len(blocks))
        ):
            blocks, block_name = mod, name
    if blocks is None:
        raise UserError("randomization test: no transformer blocks found in the model")
    emb_names = [
        n
        for n, m in model.named_modules()
        if n.endswith("embeddings") or n.endswith("embed_tokens")
    ]
    emb_names = [n for n in emb_names if not any(n.startswith(e + ".") for e in emb_names)]
    covered = [block_name, *emb_names]
    head = [
        m
        for n, m in model.named_modules()
        if n
        and not any(
            n == c or n.startswith(c + ".") or c.startswith(n + ".") or c == n for c in covered
        )
        and any(True for _ in m.parameters(recurse=False))
    ]
    stages: list[tuple[str, list[nn.Module]]] = []
    if head:
        stages.append(("head", head))
    for i in range(len(blocks) - 1, -1, -1):
        stages.append((f"{block_name}.{i}", [blocks[i]]))
    emb = [m for n, m in model.named_modules() if n in emb_names]
    if emb:
        stages.append(("embeddings", emb))
    return stages


@torch.no_grad()
def reinitialize(
    modules: Sequence[nn.Module], generator: torch.Generator, std: float = 0.02
) -> None:
    """Random weights: N(0, std²) for matrices, zeros for biases, ones for norm scales."""
    for mod in modules:
        for name, p in mod.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=generator).to(p.dtype) * std)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)


def randomization_test(
    classifier: Any,
    texts: Sequence[str],
    method: str,
    *,
    method_params: Mapping[str, Any] | None = None,
    granularity: str = "word",
    seed: int = 0,
    std: float | None = None,
) -> list[dict[str, Any]]:
    """Spearman correlation of attributions with the original after each cascading stage.

    Returns one row per stage: ``stage`` (0 = original model), ``layer``, ``spearman`` and
    ``spearman_abs`` (means over texts; constant vectors give NaN and are left out). The target is
    the original model's predicted label of each text, kept fixed. The classifier itself is not
    modified (the test works on a deep copy).
    """
    from explainlm.attribution import explain
    from explainlm.targets import ClassTarget

    original = explain(
        list(texts),
        classifier,
        [method],
        granularity=granularity,
        method_params={method: dict(method_params or {})},
    )
    labels = [e.label for e in original]
    clf = copy.deepcopy(classifier)
    model = clf.wrapper.model
    init_std = std if std is not None else float(getattr(model.config, "initializer_range", 0.02))
    gen = torch.Generator().manual_seed(seed)
    rows = [{"stage": 0, "layer": "original", "spearman": 1.0, "spearman_abs": 1.0}]
    for k, (name, modules) in enumerate(layer_stages(model), start=1):
        reinitialize(modules, gen, init_std)
        rhos, rhos_abs = [], []
        for text, lab, orig in zip(texts, labels, original, strict=True):
            new = explain(
                [text],
                clf,
                [method],
                target=ClassTarget("prob", lab),
                granularity=granularity,
                method_params={method: dict(method_params or {})},
            )[0]
            a, b = np.asarray(orig.scores, float), np.asarray(new.scores, float)
            for acc, rho in (
                (rhos, rank_correlation(a, b)),
                (rhos_abs, rank_correlation(np.abs(a), np.abs(b))),
            ):
                if np.isfinite(rho):
                    acc.append(rho)
        rows.append(
            {
                "stage": k,
                "layer": name,
                "spearman": float(np.mean(rhos)) if rhos else float("nan"),
                "spearman_abs": float(np.mean(rhos_abs)) if rhos_abs else float("nan"),
            }
        )
    return rows


def randomized_copy(classifier: Any, stages: int | None = None, *, seed: int = 0) -> Any:
    """A deep copy of ``classifier`` with its top ``stages`` cascade stages re-initialised (all: None)."""
    clf = copy.deepcopy(classifier)
    model = clf.wrapper.model
    std = float(getattr(model.config, "initializer_range", 0.02))
    gen = torch.Generator().manual_seed(seed)
    plan = layer_stages(model)
    for _name, modules in plan if stages is None else plan[:stages]:
        reinitialize(modules, gen, std)
    return clf


@METRICS.register()
class ParameterRandomization(Metric):
    """Model-parameter randomisation as a per-explanation metric (Adebayo et al., 2018).

    The method is re-run, with the same parameters and the same explained label, on a copy of the
    model whose top ``stages`` cascade stages (head, then blocks from the last; ``None``: every stage
    down to the embeddings) are re-initialised; the value is the Spearman rank correlation between
    the original and the new scores (of their absolute values with ``absolute=True``). A faithful
    method depends on the learned weights, so its value should be low; a value near 1 fails the
    sanity check. Constant score vectors give NaN.
    """

    name = "parameter_randomization"
    family = "sanity"
    higher_is_better = False
    needs = ("model",)
    defaults = {"stages": None, "absolute": False, "seed": 0}
    citation = "Adebayo et al. (2018), Sanity Checks for Saliency Maps"

    def validate(self) -> None:
        st = self.params["stages"]
        if st is not None and (not isinstance(st, int) or st < 1):
            raise UserError(f"{self.name}: stages must be a positive integer or None, got {st!r}")

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        if engine is None:
            raise UserError(f"{self.name} needs the model: pass classifier=")
        if not cases:
            return []
        clf = randomized_copy(
            engine.classifier, self.params["stages"], seed=int(self.params["seed"])
        )
        random_engine = Engine(clf, engine.target, max_batch_tokens=engine.max_batch_tokens)
        exps = [c.explanation for c in cases]
        out = []
        for c, new in zip(
            cases, reexplain(random_engine, exps, [e.text for e in exps]), strict=True
        ):
            a, b = c.scores, feature_scores(new)
            if self.params["absolute"]:
                a, b = np.abs(a), np.abs(b)
            out.append({"value": rank_correlation(a, b)})
        return out
