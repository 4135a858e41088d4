"""Generation attributions: a [generated × source] matrix per method, with save, reload and HTML."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from explainlm.errors import UserError
from explainlm.results import ResultList


@dataclass
class GenerationAttribution:
    """How much each source unit contributed to each generated token, by one method.

    ``matrix[i][j]`` is the attribution of ``target_units[i]`` to ``source_units[j]``; ``None`` where
    the source is not before the target (or is not a feature of the method). ``source_kinds`` is
    ``prompt`` (user content), ``template`` (chat/template or special tokens: shown, not a feature)
    or ``generated``.

    ``diagnostics``: the method's own reliability figures (per generated token where they vary:
    LIME's ``r2``, integrated gradients' ``delta``; KernelSHAP's ``exact``, ``n_coalitions``).
    ``check``: the faithfulness check of the attribution (see ``docs/explanations.md``), or
    ``None`` when it was turned off. ``auto``: with ``method="auto"``, the method it chose and why.
    """

    prompt: str
    continuation: str
    method: str
    target: str
    granularity: str
    source_units: list[str]
    source_kinds: list[str]
    target_units: list[str]
    target_logprobs: list[float]
    matrix: list[list[float | None]]
    params: dict[str, Any] = field(default_factory=dict)
    delta: list[float] | None = None
    seconds: float = 0.0
    model: str = ""
    chat: bool = False
    diagnostics: dict[str, Any] = field(default_factory=dict)
    check: dict[str, Any] | None = None
    auto: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def top_sources(self, row: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` sources with the largest attribution to generated token ``row``."""
        pairs = [
            (u, v)
            for u, v, kind in zip(
                self.source_units, self.matrix[row], self.source_kinds, strict=True
            )
            if v is not None and kind != "template" and math.isfinite(v)
        ]
        return sorted(pairs, key=lambda p: -p[1])[:k]

    def feature_scores(self) -> list[float]:
        """One score per prompt feature (word, or text token; template tokens are not features):
        its attribution summed over the generated tokens (the attribution to the continuation)."""
        cols = [j for j, kind in enumerate(self.source_kinds) if kind == "prompt"]
        return [float(sum(row[j] or 0.0 for row in self.matrix)) for j in cols]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json_doc(self) -> dict[str, Any]:
        """The CLI's ``--json`` entry."""
        keys = ("method", "target", "source_units", "target_units", "target_logprobs", "matrix")
        d = {k: getattr(self, k) for k in keys}
        d["granularity"] = self.granularity
        d["source_kinds"] = self.source_kinds
        if self.delta is not None:
            d["delta"] = self.delta
        d["diagnostics"] = self.diagnostics
        d["check"] = self.check
        if self.auto is not None:
            d["auto"] = self.auto
        if self.warnings:
            d["warnings"] = self.warnings
        from explainlm.report.trust import verdict_doc

        d["verdict"] = verdict_doc(self.check, self.target, len(self.feature_scores()))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationAttribution:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


class GenerationSet(ResultList[GenerationAttribution]):
    """Attributions of one or more generations by one or more methods."""

    def to_json(self, **dump: Any) -> str:
        return json.dumps(
            {"run_id": self.run_id, "attributions": [a.to_dict() for a in self]}, **dump
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save as JSON or as a self-contained HTML report."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".json":
            out.write_text(self.to_json(indent=1), encoding="utf-8")
        elif out.suffix.lower() in (".html", ".htm"):
            from explainlm.report.matrix import generation_report

            out.write_text(generation_report(self), encoding="utf-8")
        else:
            raise UserError(f"unknown file type {out.suffix!r}; use .json or .html")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GenerationSet:
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            return cls(
                [GenerationAttribution.from_dict(d) for d in doc["attributions"]],
                run_id=doc.get("run_id"),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(f"{p}: not an explainlm generation attributions file ({e})") from None

    def _repr_html_(self) -> str:
        from explainlm.report.matrix import matrix_html

        return "".join(matrix_html(a) for a in self)
