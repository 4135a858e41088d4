"""Dataset jobs: chunked work with per-chunk saving (so an interrupted job resumes), progress with an
up-front estimate, and the saved results of a whole what-if run.

>>> saved = {}
>>> done = run_chunks(list(range(5)), lambda idx, p: {i: {"x": i * i} for i in idx},
...                   saved.update, chunk_size=2)
>>> sorted(saved), saved["000004"]
(['000000', '000001', '000002', '000003', '000004'], {'x': 16})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from explainlm.progress import Progress
from explainlm.whatif.text import WordText

Process = Callable[[list[int], Progress], dict[int, dict[str, Any]]]


def key(i: int) -> str:
    """The store key of text ``i`` (zero-padded so keys sort in text order)."""
    return f"{i:06d}"


class _Inner(Progress):
    """The progress handed to one chunk of a multi-chunk job: it reports nothing of its own (the
    job's bar counts texts) but still stops the chunk when the job is cancelled."""

    def __init__(self, outer: Progress) -> None:
        super().__init__()
        self.outer = outer

    def check(self) -> None:
        self.outer.check()

    def start(
        self, stage: str, total: float | None = None, *, estimate_s: float | None = None
    ) -> None:
        self.check()

    def advance(self, n: float = 1, message: str | None = None) -> None:
        self.check()


def run_chunks(
    todo: Sequence[int],
    process: Process,
    save: Callable[[dict[str, Any]], None],
    *,
    chunk_size: int = 32,
    progress: Progress | None = None,
    stage: str = "texts",
    total: int | None = None,
    estimate_s: float | None = None,
) -> dict[int, dict[str, Any]]:
    """Process ``todo`` (text indices) in chunks, ``save`` each chunk's ``{key: payload}``.

    A single chunk gets ``progress`` itself (its inner stages show, e.g. in the web app); several
    chunks share one bar over texts (``total`` includes texts already done by a resumed run).
    """
    progress = progress or Progress()
    out: dict[int, dict[str, Any]] = {}
    chunks = [list(todo[s : s + chunk_size]) for s in range(0, len(todo), chunk_size)]
    if len(chunks) <= 1:
        for idx in chunks:
            res = process(idx, progress)
            save({key(i): v for i, v in res.items()})
            out.update(res)
        return out
    total = len(todo) if total is None else total
    progress.start(stage, total, estimate_s=estimate_s)
    progress.done = total - len(todo)
    try:
        for idx in chunks:
            res = process(idx, _Inner(progress))
            save({key(i): v for i, v in res.items()})
            out.update(res)
            progress.advance(len(idx))
    finally:
        progress.close()
    return out


def one_word_reason(text: str) -> str | None:
    """Why a text cannot be analysed (fewer than two words), or None."""
    n = len(WordText.of(text))
    if n < 2:
        return f"has {'one word' if n == 1 else 'no words'}: what-if analyses need at least two"
    return None


@dataclass
class WhatIfRun:
    """A finished what-if job: one payload per text (in text order), and the dataset summary."""

    kind: str
    run_id: str | None
    model: str
    items: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    resumed: int = 0

    def to_json_doc(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "model": self.model,
            "summary": self.summary,
            "results": self.items,
            **self.extra,
        }
