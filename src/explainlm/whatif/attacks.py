"""Adversarial robustness: small perturbations that change the prediction, under a query budget.

Two attacks, each greedy and untargeted (the prediction must leave the original label):

* ``word`` — **HotFlip-style word substitutions** (Ebrahimi et al. 2018). Each step takes the
  gradient g of p(original label) with respect to the input embeddings and ranks every substitution
  of a (single-token) word w by a replacement b among w's nearest input-embedding neighbours by the
  first-order change (e_b − e_w) · g. The ``top_k`` best are queried; the one that lowers p(original)
  most is kept. Gradients are not counted as queries (as in TextAttack).
* ``char`` — **DeepWordBug-style typos** (Gao et al. 2018). Words are ranked once (``gradient``:
  gradient × input, no queries; ``occlusion``: the drop in p(original) when the word is removed, one
  query per word, DeepWordBug's replace-1 score); then, word by word, one random variant per
  operation (swap two neighbouring letters, substitute, delete, insert a letter) is queried and the
  best kept if it lowers p(original).

Constraints: each word is perturbed at most once; stop words are left alone; at most
``max_perturbed`` of the words change; the MiniLM sentence similarity to the original stays at least
``min_similarity`` (checked before a query is spent); typos stay within ``max_edit_distance``
characters in total. A query is a unique text sent to the model, the original included.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainlm.engine.contract import item_rng, stable_key
from explainlm.errors import UserError
from explainlm.progress import Progress
from explainlm.whatif.goals import Goal, make_goal
from explainlm.whatif.oracle import QueryCounter, Search, drive
from explainlm.whatif.text import Edit, WordText, char_edit_distance, match_case

ATTACKS = ("word", "char")
RANKINGS = ("gradient", "occlusion")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


@dataclass
class AttackConfig:
    kind: str = "word"
    max_queries: int = 200
    min_similarity: float = 0.8
    max_perturbed: float = 0.3
    ranking: str = "gradient"
    neighbours: int = 20
    min_cosine: float = 0.3
    top_k: int = 8
    max_edit_distance: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ATTACKS:
            raise UserError(f"unknown attack {self.kind!r}; known: {', '.join(ATTACKS)}")
        if self.ranking not in RANKINGS:
            raise UserError(f"unknown ranking {self.ranking!r}; known: {', '.join(RANKINGS)}")
        if self.max_queries < 1:
            raise UserError(f"the query budget must be at least 1, got {self.max_queries}")
        if not 0 <= self.min_similarity <= 1:
            raise UserError(f"min_similarity must be in [0, 1], got {self.min_similarity}")
        if not 0 < self.max_perturbed <= 1:
            raise UserError(f"max_perturbed must be in (0, 1], got {self.max_perturbed}")
        for name in ("neighbours", "top_k", "max_edit_distance"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class AttackResult:
    """The attack on one text: ``status`` is ``succeeded``, ``failed`` or ``skipped``."""

    text: str
    label: str
    probs: dict[str, float]
    status: str = "failed"
    adversarial: str | None = None
    new_label: str | None = None
    new_probs: dict[str, float] | None = None
    edits: list[Edit] = field(default_factory=list)
    queries: int = 0
    gradient_calls: int = 0
    perturbed_fraction: float = 0.0
    similarity: float | None = None
    gold: str | None = None
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["edits"] = [e.to_dict() for e in self.edits]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttackResult:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["edits"] = [Edit.from_dict(e) for e in d.get("edits", [])]
        return cls(**d)


def typo_variants(word: str, rng: np.random.Generator) -> list[str]:
    """One random variant per DeepWordBug operation: swap, substitute, delete, insert a letter.

    >>> sorted(set(len(v) for v in typo_variants("movie", np.random.default_rng(0))))
    [4, 5, 6]
    """
    out = []
    n = len(word)
    if n >= 2:
        i = int(rng.integers(0, n - 1))
        out.append(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
    i = int(rng.integers(0, n))
    out.append(word[:i] + _LETTERS[int(rng.integers(0, 26))] + word[i + 1 :])
    if n >= 2:
        i = int(rng.integers(0, n))
        out.append(word[:i] + word[i + 1 :])
    i = int(rng.integers(0, n + 1))
    out.append(word[:i] + _LETTERS[int(rng.integers(0, 26))] + word[i:])
    return [v for v in dict.fromkeys(out) if v != word]


class _Attack:
    """State shared by both attacks on one text."""

    def __init__(self, wt: WordText, goal: Goal, cfg: AttackConfig, counter: QueryCounter) -> None:
        self.wt, self.goal, self.cfg, self.counter = wt, goal, cfg, counter
        self.edits: dict[int, Edit] = {}
        self.limit = max(1, int(np.floor(cfg.max_perturbed * len(wt))))
        self.stops = stop_words()
        self.gradient_calls = 0

    def text(self, edits: dict[int, Edit]) -> str:
        return self.wt.replace({i: e.replacement for i, e in edits.items()})

    def can_edit(self, i: int) -> bool:
        w = self.wt.words[i]
        return i not in self.edits and self.wt.is_editable(i) and w.lower() not in self.stops

    def try_edits(
        self, options: list[Edit], current: np.ndarray
    ) -> Search[tuple[np.ndarray, bool] | None]:
        """Query the options (after the similarity constraint); keep the best if it helps.

        Returns ``(probs, reached)`` of the kept edit, or None when nothing helped or fit.
        """
        cfg = self.cfg
        texts = [self.text({**self.edits, e.index: e}) for e in options]
        if cfg.min_similarity > 0 and texts:
            sims = yield ("similarity", [(self.wt.text, t) for t in texts])
            pairs = [
                (e, t)
                for e, t, s in zip(options, texts, sims, strict=True)
                if s >= cfg.min_similarity
            ]
        else:
            pairs = list(zip(options, texts, strict=True))
        allowed = set(self.counter.admit([t for _, t in pairs]))
        pairs = [(e, t) for e, t in pairs if t in allowed]
        if not pairs:
            return None
        probs = yield ("probs", [t for _, t in pairs])
        values = [self.goal.value(p) for p in probs]
        k = int(np.argmax(values))
        if values[k] <= self.goal.value(current) + 1e-12 and not self.goal.reached(probs[k]):
            return None
        self.edits[pairs[k][0].index] = pairs[k][0]
        return probs[k], self.goal.reached(probs[k])


def word_attack(
    attack: _Attack, label_idx: int, neighbours: Any, base: np.ndarray
) -> Search[np.ndarray]:
    """HotFlip-style greedy substitutions; returns the final probabilities."""
    cfg = attack.cfg
    current = base
    while len(attack.edits) < attack.limit and not attack.counter.exhausted:
        text = attack.text(attack.edits)
        (grad,) = yield ("grad", [(text, label_idx)])
        attack.gradient_calls += 1
        ids, word_ids, special, g, _ = grad
        here = WordText.of(text)
        # word i of the edited text is word i of the original (substitutions keep the count)
        options: list[tuple[float, Edit]] = []
        for i in range(len(here)):
            if not attack.can_edit(i):
                continue
            toks = [
                t
                for t, (w, sp) in enumerate(zip(word_ids, special, strict=True))
                if w == i and not sp
            ]
            word = here.words[i]
            if len(toks) != 1:
                continue
            t = toks[0]
            key = neighbours.lookup(word)
            if key is None:
                continue
            found = neighbours.neighbours([key], cfg.neighbours, min_cosine=cfg.min_cosine)[0]
            spaced = ids[t] == neighbours.ids.get(key)
            same_form = neighbours.ids if spaced else neighbours.bare_ids
            cands = [(c, same_form[c]) for c, _ in found if c in same_form]
            if not cands:
                continue
            table = neighbours.embeddings
            diff = (table[[b for _, b in cands]] - table[ids[t]]).numpy()
            deltas = diff @ np.asarray(g[t], dtype=diff.dtype)  # first-order change of p(original)
            for (cand, _), delta in zip(cands, deltas, strict=True):
                edit = Edit(i, attack.wt.words[i], match_case(cand, word), "hotflip")
                options.append((float(delta), edit))
        if not options:
            break
        options.sort(key=lambda x: x[0])
        kept = yield from attack.try_edits([e for _, e in options[: cfg.top_k]], current)
        if kept is None:
            break
        current, reached = kept
        if reached:
            break
    return current


def char_attack(
    attack: _Attack, order: Sequence[int], base: np.ndarray, rng: np.random.Generator
) -> Search[np.ndarray]:
    """DeepWordBug-style typos, word by word in ``order``; returns the final probabilities."""
    cfg = attack.cfg
    current = base
    for i in order:
        if len(attack.edits) >= attack.limit or attack.counter.exhausted:
            break
        if not attack.can_edit(i):
            continue
        word = attack.wt.words[i]
        used = sum(char_edit_distance(e.original, e.replacement) for e in attack.edits.values())
        options = [
            Edit(i, word, v, "typo")
            for v in typo_variants(word, rng)
            if used + char_edit_distance(word, v) <= cfg.max_edit_distance
        ]
        kept = yield from attack.try_edits(options, current)
        if kept is not None:
            current, reached = kept
            if reached:
                break
    return current


def _search(
    attack: _Attack, label_idx: int, base: np.ndarray, neighbours: Any, rng: np.random.Generator
) -> Search[np.ndarray]:
    cfg = attack.cfg
    if cfg.kind == "word":
        return (yield from word_attack(attack, label_idx, neighbours, base))
    wt = attack.wt
    if cfg.ranking == "gradient":
        (grad,) = yield ("grad", [(wt.text, label_idx)])
        attack.gradient_calls += 1
        _, word_ids, special, _, gxi = grad
        scores = np.zeros(len(wt))
        for w, sp, v in zip(word_ids, special, gxi, strict=True):
            if w >= 0 and not sp:
                scores[w] += float(v)
    else:  # occlusion: p(original) minus p(original) without the word, one query per word
        # that may be perturbed (stop words and punctuation are never changed: no query for them)
        texts = {i: wt.replace({i: ""}) for i in range(len(wt)) if attack.can_edit(i)}
        allowed = set(attack.counter.admit(list(texts.values())))
        asked = [t for t in dict.fromkeys(texts.values()) if t in allowed]
        probs = dict(zip(asked, (yield ("probs", asked)), strict=True))
        scores = np.full(len(wt), -np.inf)
        for i, t in texts.items():
            if t in probs:
                scores[i] = base[label_idx] - probs[t][label_idx]
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    return (yield from char_attack(attack, order, base, rng))


def gradient_handler(engine: Any) -> Any:
    """The ``"grad"`` handler: ``(text, label index)`` → (ids, word ids, special flags, ∂p/∂e per
    token ``[T, H]``, gradient × input per token), all texts in shared backward passes."""

    def handle(inputs: list[tuple[str, int]]) -> list[Any]:
        encs = engine.classifier.encode([t for t, _ in inputs])
        items = engine.prepare_encodings(encs, labels=[int(k) for _, k in inputs])

        def reduce(item: Any, rows: Any, grads: Any, values: Any) -> Any:
            g = grads[0].float()
            return g.cpu().numpy(), (g * rows[0].float()).sum(-1).cpu().numpy()

        out = engine.embedding_gradients(items, 1, lambda it, x, sp, gen: x.unsqueeze(0), reduce)
        return [
            (list(e.input_ids), list(e.word_ids), list(e.special), g, gxi)
            for e, (g, gxi) in zip(encs, out, strict=True)
        ]

    return handle


class Attacker:
    """Attacks many texts at once (their queries share engine passes).

    ``neighbours``: :class:`~explainlm.whatif.candidates.EmbeddingNeighbours` of the *attacked*
    model (word attack); ``similarity``: a :class:`~explainlm.whatif.quality.SentenceSimilarity`
    (needed when ``min_similarity > 0``).
    """

    def __init__(
        self, oracle: Any, config: AttackConfig, *, neighbours: Any = None, similarity: Any = None
    ) -> None:
        if config.kind == "word" and neighbours is None:
            raise UserError("the word attack needs the attacked model's embedding neighbours")
        if config.min_similarity > 0 and similarity is None:
            raise UserError("a similarity constraint needs the sentence encoder")
        self.oracle, self.config = oracle, config
        self.neighbours, self.similarity = neighbours, similarity

    def attack(
        self,
        texts: Sequence[str],
        gold: Sequence[str | None] | None = None,
        progress: Progress | None = None,
        skip: Sequence[str | None] | None = None,
    ) -> list[AttackResult]:
        """Attack each text; ``gold`` labels skip misclassified texts, ``skip[i]`` skips text ``i``."""
        progress = progress or Progress()
        start = time.perf_counter()
        cfg, labels = self.config, self.oracle.labels
        base = self.oracle.probs(list(texts))
        results, searches, attacks = [], [], []
        for i, (text, p) in enumerate(zip(texts, base, strict=True)):
            goal, _ = make_goal(p, labels)
            r = AttackResult(text, labels[goal.original], _probs(labels, p))
            r.gold = None if gold is None else gold[i]
            counter = QueryCounter(cfg.max_queries)
            counter.admit([text])  # the original prediction is the first query
            attack = _Attack(WordText.of(text), goal, cfg, counter)
            if skip is not None and skip[i]:
                r.status, r.skipped = "skipped", skip[i]
            elif r.gold is not None and labels[goal.original].lower() != str(r.gold).lower():
                r.status, r.skipped = "skipped", "already misclassified"
            elif not any(attack.can_edit(j) for j in range(len(attack.wt))):
                r.status, r.skipped = (
                    "skipped",
                    "no word to perturb (only stop words or punctuation)",
                )
            else:
                rng = item_rng(cfg.seed, stable_key(text))  # the text's own stream
                searches.append(_search(attack, goal.original, p, self.neighbours, rng))
                attacks.append((r, attack))
            results.append(r)
        handlers = {"probs": self.oracle.handler(), "grad": gradient_handler(self.oracle.engine)}
        if self.similarity is not None:
            handlers["similarity"] = self.similarity.handler()
        with progress.stage_of(f"{cfg.kind} attack", len(searches)):
            finals = drive(searches, handlers, progress)
        for (r, attack), p in zip(attacks, finals, strict=True):
            r.queries, r.gradient_calls = attack.counter.used, attack.gradient_calls
            r.edits = sorted(attack.edits.values(), key=lambda e: e.index)
            r.perturbed_fraction = len(r.edits) / len(attack.wt)
            if r.edits:
                r.adversarial = attack.text(attack.edits)
                r.new_label, r.new_probs = labels[int(np.argmax(p))], _probs(labels, p)
            r.status = "succeeded" if attack.goal.reached(p) and r.edits else "failed"
        done = [r for r in results if r.adversarial]
        if done and self.similarity is not None:
            sims = self.similarity.similarity([r.text for r in done], [r.adversarial for r in done])
            for r, v in zip(done, sims, strict=True):
                r.similarity = float(v)
        per_text = (time.perf_counter() - start) / max(len(texts), 1)
        for r in results:
            r.seconds = per_text
        return results


def _probs(labels: Sequence[str], p: np.ndarray) -> dict[str, float]:
    return {lab: float(v) for lab, v in zip(labels, p, strict=True)}
