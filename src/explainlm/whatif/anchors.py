"""Anchors (Ribeiro, Singh & Guestrin 2018): if-then rules of words that pin the prediction.

An anchor A is a set of words of the text. Its **precision** is the probability that the model keeps
its prediction on texts drawn from D(· | A): every word *not* in A is independently perturbed with
probability ``p`` — replaced by ``UNK`` (``unk``), deleted (``remove``), or replaced by a word sampled
from the built-in LLM's next-word distribution at that place (``llm``). Its **coverage** is the
probability that a draw from D(· | ∅) keeps all of A's words, (1 − p)^|A| for these distributions.

The search is the paper's beam search: anchors grow one word at a time; at each size, KL-LUCB
(:mod:`explainlm.whatif.kl_lucb`) picks the ``beam_size`` most precise candidates, each is sampled
until its KL confidence interval decides whether precision ≥ ``threshold``, and the first size with a
passing candidate returns the one with the highest lower bound (at equal size, coverage is equal).
Samples drawn for an anchor B are reused for every candidate A ⊇ B whose words they kept (exactly
D(· | A)-distributed, as words are perturbed independently).

The reported interval is the KL interval at confidence 1 − δ (each side δ/2) from the anchor's
samples; with ``validation_samples`` it comes from fresh samples only, free of selection bias.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainlm.engine.contract import item_rng, stable_key
from explainlm.errors import UserError
from explainlm.whatif.anchor_search import anchor_estimate, anchor_search
from explainlm.whatif.kl_lucb import interval
from explainlm.whatif.oracle import QueryCounter
from explainlm.whatif.text import WordText, match_case

PERTURBATIONS = ("unk", "remove", "llm")


@dataclass
class AnchorConfig:
    threshold: float = 0.95
    delta: float = 0.1
    epsilon: float = 0.15
    epsilon_stop: float = 0.05
    batch_size: int = 25
    beam_size: int = 4
    max_anchor_size: int | None = None
    perturbation: str = "unk"
    p: float = 0.5
    max_samples: int = 5000
    validation_samples: int = 0
    llm_candidates: int = 10

    def __post_init__(self) -> None:
        if self.perturbation not in PERTURBATIONS:
            raise UserError(
                f"unknown perturbation {self.perturbation!r}; known: {', '.join(PERTURBATIONS)}"
            )
        for name in ("threshold", "delta", "epsilon", "p"):
            v = float(getattr(self, name))
            if not 0 < v < 1:
                raise UserError(f"{name} must be strictly between 0 and 1, got {v}")
        for name in ("batch_size", "beam_size", "max_samples", "llm_candidates"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_anchor_size is not None and self.max_anchor_size < 1:
            raise UserError("max_anchor_size must be at least 1")


class Perturbation:
    """D(· | A) for one text: sampling, and exact enumeration for brute-force checks.

    ``options[i]``: the LLM's replacement words for word ``i`` with their probabilities (``llm``).
    """

    def __init__(
        self,
        wt: WordText,
        kind: str,
        p: float,
        *,
        unk: str = "UNK",
        options: Sequence[Sequence[tuple[str, float]]] | None = None,
    ) -> None:
        self.wt, self.kind, self.p, self.unk = wt, kind, float(p), unk
        self.options = [list(o) for o in options] if options is not None else None
        if kind == "llm" and (self.options is None or len(self.options) != len(wt)):
            raise ValueError("llm perturbation needs replacement options for every word")

    @property
    def d(self) -> int:
        return len(self.wt)

    def _replacement(self, i: int, choice: int) -> str:
        if self.kind == "remove":
            return ""
        if self.kind == "unk" or not self.options or not self.options[i]:
            return self.unk
        return match_case(self.options[i][choice][0], self.wt.words[i])

    def sample(
        self, anchor: Sequence[int], m: int, rng: np.random.Generator
    ) -> tuple[list[str], np.ndarray]:
        """``m`` texts from D(· | anchor) and which words each kept (``[m, d]``)."""
        present = rng.random((m, self.d)) >= self.p
        present[:, list(anchor)] = True
        texts = []
        for row in present:
            repl = {}
            for i in np.flatnonzero(~row):
                choice = 0
                if self.kind == "llm" and self.options and self.options[i]:
                    probs = np.asarray([q for _, q in self.options[i]])
                    choice = int(rng.choice(len(probs), p=probs / probs.sum()))
                repl[int(i)] = self._replacement(int(i), choice)
            texts.append(self.wt.replace(repl))
        return texts, present

    def outcomes(self, anchor: Sequence[int]) -> Iterator[tuple[str, float]]:
        """Every text D(· | anchor) can produce, with its probability (for brute-force checks)."""
        free = [i for i in range(self.d) if i not in set(anchor)]
        per: list[list[tuple[int, float]]] = []  # (-1 keep | option index, probability)
        for i in free:
            choices = [(-1, 1 - self.p)]
            if self.kind == "llm" and self.options and self.options[i]:
                qs = np.asarray([q for _, q in self.options[i]])
                choices += [(j, self.p * q) for j, q in enumerate(qs / qs.sum())]
            else:
                choices.append((0, self.p))
            per.append(choices)
        for combo in itertools.product(*per):
            repl = {
                i: self._replacement(i, c) for i, (c, _) in zip(free, combo, strict=True) if c >= 0
            }
            yield self.wt.replace(repl), float(np.prod([q for _, q in combo]))


@dataclass
class AnchorResult:
    """The anchor of one text (``indices`` into its words) and its estimates."""

    text: str
    label: str
    words: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    precision: float | None = None
    precision_low: float | None = None
    precision_high: float | None = None
    confidence: float = 0.9
    n_samples: int = 0
    coverage: float | None = None
    meets_threshold: bool = False
    queries: int = 0
    search_precision: float | None = None
    examples_kept: list[str] = field(default_factory=list)
    examples_changed: list[str] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0

    def rule(self) -> str:
        """``IF 'not' AND 'bad' THEN positive`` (``ALWAYS positive`` for the empty anchor)."""
        if not self.words:
            return f"ALWAYS {self.label}"
        return "IF " + " AND ".join(repr(w) for w in self.words) + f" THEN {self.label}"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"rule": self.rule()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnchorResult:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def exact_precision(
    sampler: Perturbation, anchor: Sequence[int], predict: Any, label_idx: int
) -> float:
    """Brute force: P(prediction = ``label_idx``) over every outcome of D(· | anchor).

    ``predict(texts) -> [n, labels]`` probabilities. Exponential in the free words: small texts only.
    """
    outcomes = list(sampler.outcomes(anchor))
    if len(outcomes) > 200_000:
        raise ValueError(f"{len(outcomes)} outcomes: too many for a brute-force check")
    probs = predict([t for t, _ in outcomes])
    hit = np.argmax(np.asarray(probs), -1) == label_idx
    weights = np.asarray([w for _, w in outcomes])
    return float((weights * hit).sum() / weights.sum())


class AnchorExplainer:
    """Anchors for many texts at once: their searches run in lock-step, sharing engine passes.

    ``lm`` (a :class:`~explainlm.whatif.language_model.LanguageModel`) is needed for ``llm``
    perturbations: each word's replacements are the LM's ``llm_candidates`` likeliest next words
    after the words before it, with their renormalised probabilities.
    """

    def __init__(self, oracle: Any, config: AnchorConfig, *, lm: Any = None, seed: int = 0) -> None:
        if config.perturbation == "llm" and lm is None:
            raise UserError("llm perturbations need the language model")
        self.oracle, self.config, self.lm, self.seed = oracle, config, lm, seed

    def unk_token(self) -> str:
        tok = self.oracle.classifier.wrapper.tokenizer
        unk = getattr(tok, "unk_token", None)
        return unk if unk and unk.startswith("[") else "UNK"  # BERT's [UNK]; else a plain word

    def options(self, wts: Sequence[WordText]) -> list[list[list[tuple[str, float]]]]:
        """The LM's replacement words (with probabilities) for every word of every text."""
        contexts = [wt.text[:s].rstrip(" ") for wt in wts for s, _ in wt.spans]
        proposals = self.lm.next_words(contexts, self.config.llm_candidates + 1)
        out, at = [], 0
        for wt in wts:
            per = []
            for word in wt.words:
                props = [(w, lp) for w, lp in proposals[at] if w.lower() != word.lower()]
                props = props[: self.config.llm_candidates]
                z = np.exp(
                    np.asarray([lp for _, lp in props]) - max((lp for _, lp in props), default=0)
                )
                per.append([(w, float(q / z.sum())) for (w, _), q in zip(props, z, strict=True)])
                at += 1
            out.append(per)
        return out

    def samplers(self, texts: Sequence[str]) -> list[Perturbation]:
        cfg = self.config
        wts = [WordText.of(t) for t in texts]
        options = self.options(wts) if cfg.perturbation == "llm" else [None] * len(wts)
        unk = self.unk_token()
        return [
            Perturbation(wt, cfg.perturbation, cfg.p, unk=unk, options=o)
            for wt, o in zip(wts, options, strict=True)
        ]

    def explain(
        self, texts: Sequence[str], progress: Any = None, skip: Sequence[str | None] | None = None
    ) -> list[AnchorResult]:
        """The anchor of each text's prediction; ``skip[i]`` (a reason) leaves text ``i`` out."""
        import time

        from explainlm.progress import Progress
        from explainlm.whatif.oracle import drive

        progress = progress or Progress()
        start = time.perf_counter()
        cfg = self.config
        labels = self.oracle.labels
        base = self.oracle.probs(list(texts))
        skip = list(skip) if skip is not None else [None] * len(texts)
        todo = [i for i, why in enumerate(skip) if not why]
        with progress.stage_of("replacement words" if cfg.perturbation == "llm" else "setup", 1):
            samplers = dict(zip(todo, self.samplers([texts[i] for i in todo]), strict=True))
            progress.advance(1)
        counters = {i: QueryCounter(cfg.max_samples) for i in todo}
        searches = [
            anchor_search(
                samplers[i].wt,
                int(np.argmax(base[i])),
                samplers[i],
                cfg,
                counters[i],
                item_rng(self.seed, stable_key(texts[i])),  # the text's own stream
            )
            for i in todo
        ]
        with progress.stage_of("searching anchors", len(searches)):
            found = dict(
                zip(todo, drive(searches, {"probs": self.oracle.handler()}, progress), strict=True)
            )
        results = []
        for i, (text, p) in enumerate(zip(texts, base, strict=True)):
            label = int(np.argmax(p))
            if skip[i]:
                results.append(AnchorResult(text, labels[label], skipped=skip[i]))
                continue
            s, out = samplers[i], found[i]
            anchor = tuple(out["anchor"])
            mean, lb, ub, n = anchor_estimate(out["store"], anchor, cfg.delta)
            kept, changed = out["examples"].get(anchor, ([], []))
            results.append(
                AnchorResult(
                    text,
                    labels[label],
                    [s.wt.words[j] for j in anchor],
                    list(anchor),
                    mean,
                    lb,
                    ub,
                    1 - cfg.delta,
                    n,
                    (1 - cfg.p) ** len(anchor),
                    bool(out.get("found", True)),
                    counters[i].used,
                    mean,
                    list(kept),
                    list(changed),
                )
            )
        if cfg.validation_samples and todo:
            self._validate(results, samplers, base)
        per_text = (time.perf_counter() - start) / max(len(texts), 1)
        for r in results:
            r.seconds = per_text
        return results

    def _validate(
        self, results: list[AnchorResult], samplers: dict[int, Perturbation], base: np.ndarray
    ) -> None:
        """Re-estimate each anchor's precision from fresh samples (no selection bias)."""
        cfg = self.config
        texts, owner = [], []
        for k, s in samplers.items():
            rng = item_rng(self.seed, stable_key(results[k].text, "validation"))
            drawn, _ = s.sample(results[k].indices, cfg.validation_samples, rng)
            texts += drawn
            owner += [k] * len(drawn)
        probs = self.oracle.probs(texts)
        hits = np.zeros(len(results))
        for k, p in zip(owner, probs, strict=True):
            hits[k] += int(np.argmax(p)) == int(np.argmax(base[k]))
        for k in samplers:
            r = results[k]
            n = cfg.validation_samples
            r.precision, r.precision_low, r.precision_high = interval(
                hits[k], n, math.log(2 / cfg.delta)
            )
            r.n_samples = n
            r.queries += n
