"""Black-box models: any ``texts -> probabilities`` function, a scikit-learn pipeline, or an HTTP
endpoint (:mod:`explainlm.models.endpoint`), behind the :class:`~explainlm.models.Classifier`
interface.

A black-box model has no weights to differentiate, so it sees text only: each word unit (see
:mod:`explainlm.models.words`) is one "token", and every perturbation the engine builds (a word
removed, a word masked) is turned back into a text before the function is called. So the
perturbation methods (occlusion, LIME, KernelSHAP), the faithfulness metrics, dataset-level importance
and surrogates run on black boxes unchanged; gradient and attention methods refuse with a clear error.

Repeated inputs are answered from a cache (perturbation methods ask for the same reduced text many
times), and the function is called in batches of ``batch_size`` texts.

>>> import numpy as np
>>> def toy(texts):  # P(positive) grows with the number of "good"
...     p = np.array([min(0.9, 0.3 + 0.4 * t.split().count("good")) for t in texts])
...     return np.stack([1 - p, p], axis=1)
>>> clf = BlackBoxClassifier(toy, ["negative", "positive"])
>>> clf.predict(["a good film"])[0].label
'positive'
>>> from explainlm import explain
>>> e = explain(["a good film"], clf, ["occlusion"])[0]
>>> [round(s, 3) for s in e.word_scores]
[0.0, 0.4, 0.0]
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from explainlm.errors import UserError
from explainlm.models.classifiers import Classifier
from explainlm.models.words import split_words
from explainlm.models.wrapper import Batch, Encoding

ProbaFn = Callable[[list[str]], Any]
PAD, MASK = 0, 1


class EndpointError(UserError):
    """A black-box model (function or endpoint) failed or answered something unusable."""


class _WordVocabulary:
    """Ids for word strings (0 = padding, 1 = the mask), grown as texts are encoded."""

    def __init__(self, mask_token: str) -> None:
        self.mask_token = mask_token
        self.ids: dict[str, int] = {}
        self.words: list[str] = ["", mask_token]
        self._lock = threading.Lock()

    def id(self, word: str) -> int:
        with self._lock:
            if word not in self.ids:
                self.ids[word] = len(self.words)
                self.words.append(word)
            return self.ids[word]


class _Tokenizer:
    """What the perturbation code asks of a tokenizer: the mask and padding ids."""

    mask_token_id = MASK
    unk_token_id = MASK
    pad_token_id = PAD


class WordWrapper:
    """Stands in for :class:`~explainlm.models.ModelWrapper`: word units as tokens, no weights.

    ``encode`` gives one token per word (ids from a vocabulary grown on the fly); ``collate`` pads
    them; :meth:`text_of` turns a (perturbed) encoding back into the text the model is called on.
    """

    kind = "black_box"
    is_decoder = False
    padding_side = "right"
    pad_token_id = PAD
    chat = False

    def __init__(self, name: str, mask_token: str = "[MASK]") -> None:
        self.name = name
        self.meta: dict[str, Any] = {}
        self.vocab = _WordVocabulary(mask_token)
        self.tokenizer = _Tokenizer()
        self.device = torch.device("cpu")
        self.max_length = 10**9

    @property
    def model(self) -> Any:
        raise UserError(
            f"{self.name} is a black-box model: only perturbation methods (occlusion, lime, "
            "kernel_shap) and metrics that query predictions work on it; gradient, attention and "
            "internals need the model's weights"
        )

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model  # raises the UserError above

    @property
    def embedding_layer(self) -> Any:
        return self.model

    def encode(
        self,
        texts: Sequence[str],
        *,
        truncation: bool = True,
        allow_empty: bool = False,
        **_: Any,
    ) -> list[Encoding]:
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for i, t in enumerate(texts):
            if not isinstance(t, str) or (not t.strip() and not allow_empty):
                raise UserError(f"text {i + 1} is empty: nothing to predict or explain")
            spans = split_words(t)
            words = [t[s:e] for s, e in spans]
            out.append(
                Encoding(
                    text=t,
                    sequence=t,
                    input_ids=[self.vocab.id(w) for w in words],
                    tokens=words,
                    offsets=list(spans),
                    special=[False] * len(words),
                    word_ids=list(range(len(words))),
                    word_spans=list(spans),
                )
            )
        return out

    def collate(
        self, encodings: Sequence[Encoding], extra: Sequence[Sequence[int]] | None = None
    ) -> Batch:
        width = max([len(e) for e in encodings] + [1])
        ids = torch.full((len(encodings), width), PAD, dtype=torch.long)
        mask = torch.zeros((len(encodings), width), dtype=torch.long)
        for i, e in enumerate(encodings):
            ids[i, : len(e)] = torch.tensor(e.input_ids, dtype=torch.long)
            mask[i, : len(e)] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return Batch(list(encodings), ids, mask, pos, "right")

    def text_of(self, enc: Encoding) -> str:
        """The text an encoding stands for, after the engine removed or masked some of its words.

        Unchanged ids give the original text. Otherwise the kept ids are matched in order against
        the original words: a word whose id became the mask id is replaced by the mask string, a
        missing one (deleted, or replaced by padding) is removed; whitespace is collapsed.
        """
        original = [self.vocab.ids.get(w, -1) for w in enc.words]
        ids = list(enc.input_ids)
        if ids == original:
            return enc.text
        pieces: list[str] = []
        cursor, k = 0, 0
        for (s, e), oid in zip(enc.word_spans, original, strict=True):
            current = ids[k] if k < len(ids) else None
            if current == oid:
                k += 1
                continue
            pieces.append(enc.text[cursor:s])
            if current == MASK and len(ids) == len(original):
                pieces.append(self.vocab.mask_token)
                k += 1
            elif current == PAD and len(ids) == len(original):
                k += 1
            cursor = e
        pieces.append(enc.text[cursor:])
        return " ".join("".join(pieces).split())

    def __repr__(self) -> str:
        return f"WordWrapper(name={self.name!r})"


class BlackBoxClassifier(Classifier):
    """A classifier known only through ``predict_proba(texts) -> [n, classes]`` probabilities.

    ``predict_proba`` may return an array-like ``[n, C]`` (columns in ``labels`` order) or one
    ``{label: probability}`` dict per text. Class scores are log-probabilities, so the ``prob``
    target is the returned probability and ``logit`` its log. ``empty_text`` is sent for a text
    whose words were all removed (an endpoint that refuses empty texts needs a stand-in).
    """

    task = "black_box"

    def __init__(
        self,
        predict_proba: ProbaFn,
        labels: Sequence[str],
        *,
        name: str = "black-box",
        batch_size: int = 64,
        cache_size: int = 100_000,
        mask_token: str = "[MASK]",
        empty_text: str = "",
        atol: float = 1e-3,
    ) -> None:
        if batch_size < 1:
            raise UserError("batch_size must be at least 1")
        super().__init__(WordWrapper(name, mask_token), [str(x) for x in labels])  # type: ignore[arg-type]
        if len(set(self.labels)) != len(self.labels):
            raise UserError(f"duplicate labels: {', '.join(self.labels)}")
        self.predict_proba = predict_proba
        self.batch_size = int(batch_size)
        self.cache_size = int(cache_size)
        self.empty_text = empty_text
        self.atol = atol
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.calls = 0  # calls of predict_proba
        self.texts_sent = 0  # texts sent to predict_proba (cache misses)
        self.cache_hits = 0  # answers given without sending the text

    # ------------------------------------------------------------------------------ calls
    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, C]`` probabilities of ``texts``: cached ones from the cache, the rest in batches."""
        out = np.empty((len(texts), len(self.labels)))
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, t in enumerate(texts):
                hit = self._cache.get(t)
                if hit is None:
                    if t in todo:
                        self.cache_hits += 1  # asked twice in one call: sent once
                    todo.setdefault(t, []).append(i)
                else:
                    self._cache.move_to_end(t)
                    out[i] = hit
                    self.cache_hits += 1
        unique = list(todo)
        for s in range(0, len(unique), self.batch_size):
            chunk = unique[s : s + self.batch_size]
            sent = [t if t.strip() else self.empty_text for t in chunk]
            probs = self._check(self._call(sent), len(chunk))
            with self._lock:
                for t, p in zip(chunk, probs, strict=True):
                    for i in todo[t]:
                        out[i] = p
                    self._cache[t] = p
                    if len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        return out

    def _call(self, texts: list[str]) -> Any:
        self.calls += 1
        self.texts_sent += len(texts)
        try:
            return self.predict_proba(texts)
        except UserError:
            raise
        except Exception as e:
            raise EndpointError(f"{self.name}: the model failed on {len(texts)} texts: {e}") from e

    def _check(self, raw: Any, n: int) -> np.ndarray:
        """Validate one answer: ``n`` rows of ``C`` finite, non-negative numbers summing to 1."""
        if isinstance(raw, Sequence) and raw and isinstance(raw[0], Mapping):
            rows = []
            for i, d in enumerate(raw):
                missing = [lab for lab in self.labels if lab not in d]
                if missing:
                    raise EndpointError(
                        f"{self.name}: answer {i + 1} has no probability for {', '.join(missing)} "
                        f"(it has {', '.join(map(str, d)) or 'nothing'})"
                    )
                rows.append([d[lab] for lab in self.labels])
            raw = rows
        try:
            a = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise EndpointError(f"{self.name}: answer is not numeric probabilities ({e})") from None
        if a.shape != (n, len(self.labels)):
            raise EndpointError(
                f"{self.name}: expected {n} × {len(self.labels)} probabilities "
                f"({', '.join(self.labels)}), got shape {a.shape}"
            )
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise EndpointError(f"{self.name}: probabilities must be finite and non-negative")
        sums = a.sum(1)
        bad = np.flatnonzero(np.abs(sums - 1) > self.atol)
        if bad.size:
            raise EndpointError(
                f"{self.name}: probabilities of answer {bad[0] + 1} sum to {sums[bad[0]]:.4g}, "
                "not 1 (return probabilities, e.g. a softmax, in the labels' order)"
            )
        return a / sums[:, None]

    # -------------------------------------------------------------------- the classifier API
    def encode(
        self, texts: Sequence[str], truncation: bool = True, allow_empty: bool = False
    ) -> list[Encoding]:
        return self.wrapper.encode(texts, truncation=truncation, allow_empty=allow_empty)

    def class_scores(self, batch: Batch, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        if inputs_embeds is not None:
            self.wrapper.model  # noqa: B018 - raises the black-box error
        texts = [self.wrapper.text_of(e) for e in batch.encodings]
        probs = self.probabilities(texts)
        return torch.from_numpy(np.log(np.clip(probs, 1e-30, None))).float()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "black_box": True, "cache_size": self.cache_size}

    @classmethod
    def from_sklearn(
        cls, estimator: Any, labels: Sequence[str] | None = None, **kw: Any
    ) -> BlackBoxClassifier:
        """A fitted scikit-learn classifier or pipeline over raw texts (``predict_proba``)."""
        if not hasattr(estimator, "predict_proba"):
            raise UserError(f"{type(estimator).__name__} has no predict_proba")
        names = list(labels) if labels else [str(c) for c in getattr(estimator, "classes_", [])]
        if not names:
            raise UserError("give labels=: the estimator has no classes_")
        kw.setdefault("name", type(estimator).__name__)
        return cls(lambda texts: estimator.predict_proba(list(texts)), names, **kw)
