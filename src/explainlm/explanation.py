"""Explanation results: one :class:`Explanation` per (text, method), collected in an :class:`ExplanationSet`.

>>> e = Explanation(text="good film", method="occlusion", target="prob", label="positive",
...                 predicted="positive", probs={"negative": 0.1, "positive": 0.9},
...                 words=["good", "film"], word_scores=[0.4, 0.1])
>>> e.top(1)
[('good', 0.4)]
>>> ExplanationSet([e]).to_pandas().shape[0]
2
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from explainlm.errors import UserError
from explainlm.results import ResultList

FORMAT_VERSION = 1
JSON_KEYS = (
    "text",
    "method",
    "target",
    "label",
    "probs",
    "granularity",
    "units",
    "scores",
    "delta",
    "diagnostics",
    "check",
    "auto",
)


@dataclass
class Explanation:
    """Attribution scores of one prediction by one method.

    ``tokens``/``token_scores`` are per model token (``None`` scores for methods that only work on
    words); ``words``/``word_scores`` are per word unit (sub-word scores summed; special and template
    tokens excluded). ``granularity`` says which of the two is the primary view (``units``/``scores``).

    ``diagnostics``: what the method reports about its own reliability (LIME's weighted ``r2``,
    KernelSHAP's ``exact`` and ``n_coalitions``, integrated gradients' completeness ``delta``).
    ``check``: the faithfulness check computed with the explanation (comprehensiveness and
    sufficiency at a few removal fractions, with a random-ranking baseline; see
    ``docs/explanations.md``), or ``None`` when it was turned off.
    ``auto``: with ``method="auto"``, the method it chose and why (see ``docs/trust.md``).
    """

    text: str
    method: str
    target: str
    label: str
    predicted: str
    probs: dict[str, float]
    words: list[str]
    word_scores: list[float]
    tokens: list[str] = field(default_factory=list)
    token_scores: list[float] | None = None
    token_special: list[bool] = field(default_factory=list)
    word_ids: list[int] = field(default_factory=list)
    granularity: str = "word"
    params: dict[str, Any] = field(default_factory=dict)
    delta: float | None = None
    target_value: float | None = None
    seconds: float = 0.0
    model: str = ""
    warnings: list[str] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    check: dict[str, Any] | None = None
    auto: dict[str, Any] | None = None
    sentences: list[str] = field(default_factory=list)  # granularity "sentence": its units
    sentence_scores: list[float] | None = None

    @property
    def units(self) -> list[str]:
        """The explained units at the chosen granularity (words, sentences or tokens)."""
        if self.granularity == "sentence":
            return self.sentences
        return self.tokens if self.granularity == "token" else self.words

    @property
    def scores(self) -> list[float]:
        if self.granularity == "token":
            if self.token_scores is None:
                raise UserError(f"{self.method} has no token-level scores")
            return self.token_scores
        if self.granularity == "sentence":
            return list(self.sentence_scores or [])
        return self.word_scores

    def top(self, k: int = 5, *, absolute: bool = False) -> list[tuple[str, float]]:
        """The ``k`` units with the highest (or highest absolute) scores."""
        pairs = [
            (u, s)
            for u, s, sp in zip(self.units, self.scores, self._unit_special(), strict=True)
            if not sp
        ]
        pairs.sort(key=lambda p: -abs(p[1]) if absolute else -p[1])
        return pairs[:k]

    def _unit_special(self) -> list[bool]:
        if self.granularity == "token":
            return self.token_special or [False] * len(self.tokens)
        return [False] * len(self.units)

    def feature_scores(self) -> list[float]:
        """One score per feature: the word scores, or (token granularity) the scores of the text's
        tokens (special and template tokens are never features)."""
        if self.granularity == "sentence":
            return list(self.sentence_scores or [])
        if self.granularity != "token":
            return list(self.word_scores)
        special = self.token_special or [False] * len(self.scores)
        return [s for s, sp in zip(self.scores, special, strict=True) if not sp]

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` form of one explanation, plus everything needed to reload it."""
        d = asdict(self)
        d["units"] = self.units
        d["scores"] = self.scores
        if self.delta is None:
            d.pop("delta")
        return d

    def to_json_doc(self) -> dict[str, Any]:
        """The entry of ``explainlm explain --json`` (and of the web API's explain document)."""
        d = self.to_dict()
        doc = {k: d[k] for k in JSON_KEYS if k in d}
        if doc.get("auto") is None:
            doc.pop("auto", None)
        if self.warnings:
            doc["warnings"] = list(self.warnings)
        from explainlm.report.trust import verdict_doc

        doc["verdict"] = verdict_doc(self.check, self.target, len(self.feature_scores()))
        return doc

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Explanation:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def _repr_html_(self) -> str:
        from explainlm.report.heatmap import explanation_html

        return explanation_html(self)


class ExplanationSet(ResultList[Explanation]):
    """A list of explanations with export, save and reload."""

    @property
    def explanations(self) -> list[Explanation]:
        return self.items

    def by_method(self, method: str) -> list[Explanation]:
        return [e for e in self.explanations if e.method == method]

    def to_pandas(self) -> Any:
        """One row per (explanation, unit): text index, method, unit, score, …"""
        import pandas as pd

        rows = []
        for i, e in enumerate(self.explanations):
            for j, (u, s) in enumerate(zip(e.units, e.scores, strict=True)):
                rows.append(
                    {
                        "explanation": i,
                        "text": e.text,
                        "method": e.method,
                        "target": e.target,
                        "label": e.label,
                        "predicted": e.predicted,
                        "granularity": e.granularity,
                        "position": j,
                        "unit": u,
                        "score": s,
                    }
                )
        return pd.DataFrame(rows)

    def to_json(self, **dump: Any) -> str:
        return json.dumps(
            {
                "format": FORMAT_VERSION,
                "run_id": self.run_id,
                "explanations": [e.to_dict() for e in self.explanations],
            },
            **dump,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save as JSON (``.json``), Parquet (``.parquet``, one row per unit) or HTML (``.html``)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        suffix = out.suffix.lower()
        if suffix == ".json":
            out.write_text(self.to_json(indent=1), encoding="utf-8")
        elif suffix == ".parquet":
            self.to_pandas().to_parquet(out, index=False)
        elif suffix in (".html", ".htm"):
            from explainlm.report.heatmap import explanations_report

            out.write_text(explanations_report(self), encoding="utf-8")
        else:
            raise UserError(f"unknown file type {out.suffix!r}; use .json, .parquet or .html")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExplanationSet:
        """Reload a set saved as JSON."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            return cls(
                [Explanation.from_dict(d) for d in doc["explanations"]], run_id=doc.get("run_id")
            )
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(f"{p}: not an explainlm explanations file ({e})") from None

    def _repr_html_(self) -> str:
        from explainlm.report.heatmap import explanation_html

        return "".join(explanation_html(e) for e in self.explanations)
