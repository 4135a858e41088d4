"""HTTP endpoints as black-box classifiers: retries, timeouts, rate limits, job polling, clear errors.

The protocol is described in :class:`HttpPredictor`; :class:`HttpClassifier` puts an endpoint behind
the classifier interface (see :mod:`explainlm.models.blackbox`), so every perturbation method,
faithfulness metric and global analysis runs on it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from explainlm.errors import UserError
from explainlm.models.blackbox import BlackBoxClassifier, EndpointError


class HttpPredictor:
    """POSTs texts as JSON to an endpoint and reads label probabilities (or log-probs) back.

    Request body: ``{texts_field: [...], **body}``. Answers understood (``response="auto"``): a list
    of per-text entries, or a JSON object holding one under ``predictions``/``results``/``probs``/
    ``logprobs``/``data``; an entry is ``{"probs": {label: p}}``, ``{"logprobs": {label: lp}}``
    (softmaxed over the labels), a ``{label: p}`` dict, or a list of numbers in label order.

    Transient failures (connection errors, timeouts, HTTP 429 and 5xx) are retried ``max_retries``
    times with exponential backoff from ``backoff_s`` (a ``Retry-After`` header wins); other HTTP
    errors fail at once with the server's message. ``max_requests_per_s`` spaces requests out.
    An answer ``202 Accepted`` with a ``Location`` header (a background job, as our web API returns
    for large requests) is polled until the job finishes, for at most ``job_timeout_s``.
    """

    def __init__(
        self,
        url: str,
        *,
        texts_field: str = "texts",
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_requests_per_s: float | None = None,
        response: str = "auto",
        job_timeout_s: float = 600.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"not an http(s) URL: {url!r}")
        if response not in ("auto", "probs", "logprobs"):
            raise UserError("response must be auto, probs or logprobs")
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise UserError("timeout_s must be > 0, max_retries and backoff_s ≥ 0")
        if max_requests_per_s is not None and max_requests_per_s <= 0:
            raise UserError("max_requests_per_s must be > 0")
        self.url = url
        self.texts_field = texts_field
        self.body = dict(body or {})
        self.headers = {"Content-Type": "application/json", **dict(headers or {})}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.min_interval = 1.0 / max_requests_per_s if max_requests_per_s else 0.0
        self.response = response
        self.job_timeout_s = float(job_timeout_s)
        self._last = 0.0
        self._lock = threading.Lock()
        self.requests = 0  # HTTP requests sent, retries included
        self.retries = 0

    def __call__(self, texts: list[str]) -> list[Any]:
        doc = self.post({**self.body, self.texts_field: list(texts)})
        entries = self.entries(doc)
        if len(entries) != len(texts):
            raise EndpointError(f"{self.url}: {len(entries)} answers for {len(texts)} texts")
        return [self.entry(e, i) for i, e in enumerate(entries)]

    # --------------------------------------------------------------------------- transport
    def _wait_turn(self) -> None:
        if not self.min_interval:
            return
        with self._lock:
            now = time.monotonic()
            wait = self._last + self.min_interval - now
            if wait > 0:
                time.sleep(wait)
            self._last = max(now, self._last + self.min_interval)

    def post(self, payload: Mapping[str, Any]) -> Any:
        """POST ``payload``; the decoded JSON answer (with retries, see the class docstring)."""
        data = json.dumps(payload).encode()
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.retries += 1
            self._wait_turn()
            self.requests += 1
            req = urllib.request.Request(self.url, data=data, headers=self.headers, method="POST")
            delay = self.backoff_s * 2**attempt
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    body = r.read()
                    location = r.headers.get("Location") if r.status == 202 else None
                break
            except urllib.error.HTTPError as e:
                message = _server_message(e)
                if e.code != 429 and e.code < 500:
                    raise EndpointError(f"{self.url} answered HTTP {e.code}: {message}") from None
                last = f"HTTP {e.code}: {message}"
                delay = _retry_after(e, delay)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                reason = getattr(e, "reason", e)
                last = (
                    f"timed out after {self.timeout_s:g} s" if _is_timeout(reason) else str(reason)
                )
            if attempt < self.max_retries:
                time.sleep(delay)
        else:
            raise EndpointError(
                f"{self.url}: no answer after {self.max_retries + 1} attempts (last: {last})"
            )
        doc = self._json(body)
        return self._follow(location) if location else doc

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            raise EndpointError(f"{self.url}: the answer is not JSON: {body[:80]!r}") from None

    def _follow(self, location: str) -> Any:
        """An accepted job (HTTP 202 + ``Location``): poll it until it finishes; its ``result``."""
        url = urllib.parse.urljoin(self.url, location)
        deadline = time.monotonic() + self.job_timeout_s
        delay = 0.05
        while True:
            req = urllib.request.Request(url, headers=self.headers, method="GET")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    doc = self._json(r.read())
            except (urllib.error.URLError, OSError) as e:
                raise EndpointError(f"{url}: polling the job failed: {e}") from None
            status = doc.get("status") if isinstance(doc, Mapping) else None
            if status == "finished":
                return doc.get("result")
            if status not in ("queued", "running"):
                raise EndpointError(f"{url}: the job ended {status}: {doc.get('error')}")
            if time.monotonic() > deadline:
                raise EndpointError(f"{url}: the job did not finish in {self.job_timeout_s:g} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    # ----------------------------------------------------------------------------- parsing
    def entries(self, doc: Any) -> list[Any]:
        if isinstance(doc, list):
            return doc
        if isinstance(doc, Mapping):
            for key in ("predictions", "results", "probs", "probabilities", "logprobs", "data"):
                if isinstance(doc.get(key), list):
                    if key == "logprobs":
                        return [{"logprobs": v} for v in doc[key]]
                    return doc[key]
        keys = ", ".join(map(str, doc)) if isinstance(doc, Mapping) else type(doc).__name__
        raise EndpointError(
            f"{self.url}: cannot find per-text answers in the response (got {keys}); expected a "
            "list, or an object with 'predictions' or 'probs'"
        )

    def entry(self, e: Any, i: int) -> Any:
        """One text's answer → label probabilities (a dict or a list in label order)."""
        kind = self.response
        if isinstance(e, Mapping):
            if "logprobs" in e and kind != "probs":
                return _softmax(e["logprobs"])
            if "probs" in e or "probabilities" in e:
                value = e.get("probs", e.get("probabilities"))
                return _softmax(value) if kind == "logprobs" else value
            if e and all(isinstance(v, (int, float)) for v in e.values()):
                return _softmax(e) if kind == "logprobs" else dict(e)
        elif isinstance(e, list) and all(isinstance(v, (int, float)) for v in e):
            return _softmax(e) if kind == "logprobs" else e
        raise EndpointError(
            f"{self.url}: answer {i + 1} holds no label probabilities: {json.dumps(e)[:120]}"
        )


def _softmax(values: Any) -> Any:
    if isinstance(values, Mapping):
        keys = list(values)
        probs = _softmax([float(values[k]) for k in keys])
        return dict(zip(keys, probs, strict=True))
    a = np.asarray(values, dtype=np.float64)
    a = np.exp(a - a.max())
    return (a / a.sum()).tolist()


def _server_message(e: urllib.error.HTTPError) -> str:
    try:
        raw = e.read()
    except OSError:
        return e.reason or ""
    try:
        doc = json.loads(raw)
        if isinstance(doc, Mapping):
            return str(doc.get("error") or doc.get("detail") or doc)[:300]
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    return raw[:300].decode("utf-8", "replace") or str(e.reason)


def _retry_after(e: urllib.error.HTTPError, default: float) -> float:
    value = e.headers.get("Retry-After") if e.headers else None
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _is_timeout(reason: Any) -> bool:
    return isinstance(reason, TimeoutError) or "timed out" in str(reason).lower()


class HttpClassifier(BlackBoxClassifier):
    """A classifier behind an HTTP endpoint (see :class:`HttpPredictor` for the protocol).

    ``labels=None`` asks the endpoint once (with ``probe_text``) and takes the label names from
    its answer, which must then be a ``{label: p}`` mapping.
    """

    def __init__(
        self,
        url: str,
        labels: Sequence[str] | None = None,
        *,
        probe_text: str = "hello",
        batch_size: int = 32,
        cache_size: int = 100_000,
        mask_token: str = "[MASK]",
        empty_text: str = "",
        name: str | None = None,
        **http: Any,
    ) -> None:
        predictor = HttpPredictor(url, **http)
        if labels is None:
            first = predictor([probe_text])[0]
            if not isinstance(first, Mapping):
                raise EndpointError(f"{url}: answers carry no label names; pass labels=")
            labels = list(first)
        super().__init__(
            predictor,
            labels,
            name=name or url,
            batch_size=batch_size,
            cache_size=cache_size,
            mask_token=mask_token,
            empty_text=empty_text,
        )
        self.http = predictor
