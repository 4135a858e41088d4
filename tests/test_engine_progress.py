"""Progress and cancellation: every pass of the engine advances the caller's Progress."""

from __future__ import annotations

import pytest

from explainlm.attribution import explain
from explainlm.engine import Engine
from explainlm.generation import explain_generation
from explainlm.methods import get_method
from explainlm.models import Generator, make_task
from explainlm.progress import Cancelled, Progress

TEXTS = ["a wonderful , touching film", "dull and boring , a waste of time"]


class Recording(Progress):
    def __init__(self, cancel_after: int | None = None) -> None:
        super().__init__()
        self.stages: list[dict] = []
        self.advances = 0
        self.cancel_after = cancel_after

    def start(self, stage, total=None, *, estimate_s=None) -> None:
        super().start(stage, total, estimate_s=estimate_s)
        self.stages.append({"stage": stage, "total": total, "estimate": estimate_s, "done": 0})

    def advance(self, n=1, message=None) -> None:
        self.advances += 1
        if self.cancel_after is not None and self.advances >= self.cancel_after:
            self.cancel()
        super().advance(n, message)
        self.stages[-1]["done"] += n


@pytest.fixture(scope="module")
def clf(tiny_bert):
    return make_task(tiny_bert)


def test_every_pass_advances_its_stage_with_an_estimate(clf) -> None:
    rec = Recording()
    engine = Engine(clf, progress=rec, max_batch_tokens=64)
    items = engine.prepare(TEXTS)
    with engine.labelled("occlusion"):
        get_method("occlusion").attribute(engine, items)
    with engine.labelled("integrated_gradients"):
        get_method("integrated_gradients", steps=6).attribute(engine, items)
    names = [s["stage"] for s in rec.stages]
    assert names == ["predicting", "occlusion: scoring variants", "integrated_gradients: gradients"]
    assert [s["done"] for s in rec.stages] == [s["total"] for s in rec.stages] == [2, 13, 16]
    assert rec.advances == engine.passes > 3  # a small budget: many passes, each one reported
    assert rec.stages[0]["estimate"] is None  # nothing measured yet
    assert all(s["estimate"] > 0 for s in rec.stages[1:])  # from the measured throughput


def test_explain_reports_every_stage_and_can_be_cancelled(clf, capsys) -> None:
    rec = Recording()
    explain(TEXTS, clf, ["occlusion"], progress=rec)
    assert [s["stage"] for s in rec.stages] == [
        "predicting",
        "occlusion: scoring variants",
        "check: scoring variants",
    ]
    with pytest.raises(Cancelled):
        explain(
            TEXTS,
            clf,
            ["occlusion", "lime"],
            progress=Recording(cancel_after=2),
            max_batch_tokens=32,
        )
    explain(TEXTS, clf, ["occlusion"])  # no progress: nothing printed
    assert capsys.readouterr().err == ""


def test_generation_progress(tiny_llama) -> None:
    rec = Recording()
    gen = Generator(tiny_llama, chat=False)
    explain_generation(
        ["a wonderful , touching film"], gen, ["occlusion"], max_new_tokens=2, progress=rec
    )
    stages = {s["stage"]: s for s in rec.stages}
    occ = stages["occlusion: scoring continuations"]
    assert occ["total"] == occ["done"] == 1 + 5 + 1  # the reference, 5 words, 1 generated token
    assert "check: scoring continuations" in stages
