"""Long inputs: sentence granularity (one perturbation per sentence, not per word), the estimate
printed before long work, and progress that moves with every pass."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from explainlm import explain
from explainlm.engine.masks import sentence_ids
from explainlm.models import ModelWrapper, make_task
from explainlm.models.words import remove_words, split_words
from explainlm.progress import Progress, TerminalProgress

TEXT = (
    "A fine film. The plot is dull and slow!\n"
    "But the actors are great, and the music works. Overall, is it worth it? "
    "I think so…"
)


@pytest.fixture(scope="module")
def clf(tiny_bert_dir: Path):  # type: ignore[no-untyped-def]
    return make_task(ModelWrapper.load(str(tiny_bert_dir)))


class Stages(Progress):
    """Records every stage's name and total."""

    def __init__(self) -> None:
        super().__init__()
        self.stages: list[tuple[str, float | None, float | None]] = []

    def start(self, stage, total=None, *, estimate_s=None):  # type: ignore[no-untyped-def]
        super().start(stage, total, estimate_s=estimate_s)
        self.stages.append((stage, total, estimate_s))


def test_sentences_split_after_end_marks_and_line_breaks() -> None:
    spans = split_words(TEXT)
    ids = sentence_ids(TEXT, spans)
    sentences = [
        " ".join(TEXT[s:e] for (s, e), g in zip(spans, ids, strict=True) if g == k)
        for k in range(ids.max() + 1)
    ]
    assert [s.split()[0] for s in sentences] == ["A", "The", "But", "Overall", "I"]
    assert sentences[1].endswith("!") and sentences[3].endswith("?") and sentences[4].endswith("…")


def test_sentence_occlusion_is_the_drop_when_a_sentence_is_removed(clf) -> None:  # type: ignore[no-untyped-def]
    progress = Stages()
    (e,) = explain([TEXT], clf, ["occlusion"], granularity="sentence", progress=progress)
    spans = split_words(TEXT)
    ids = sentence_ids(TEXT, spans)
    label = clf.labels.index(e.label)
    full = clf.predict([TEXT])[0].probs[e.label]
    expected = []
    for k in range(ids.max() + 1):
        without = remove_words(TEXT, spans, ids != k)  # a brute-force loop, one text at a time
        expected.append(full - clf.predict([without])[0].probs[clf.labels[label]])
    assert e.units == [
        TEXT[spans[np.flatnonzero(ids == k)[0]][0] : spans[np.flatnonzero(ids == k)[-1]][1]]
        for k in range(ids.max() + 1)
    ]
    assert e.scores == pytest.approx(expected, abs=1e-5)
    assert e.feature_scores() == e.scores
    # every word carries its sentence's score
    assert e.word_scores == pytest.approx([e.scores[k] for k in ids], abs=1e-12)
    scored = [total for name, total, _ in progress.stages if "scoring variants" in name]
    assert scored[0] == ids.max() + 1  # one perturbation per sentence, not per word (19)


def test_gradient_sentence_score_is_the_sum_of_its_words(clf) -> None:  # type: ignore[no-untyped-def]
    (w,) = explain([TEXT], clf, ["grad_x_input"], granularity="word", check=False)
    (s,) = explain([TEXT], clf, ["grad_x_input"], granularity="sentence", check=False)
    ids = sentence_ids(TEXT, split_words(TEXT))
    sums = np.bincount(ids, weights=np.asarray(w.word_scores))
    assert s.scores == pytest.approx(sums.tolist(), abs=1e-6)


def test_sentence_explanations_round_trip(clf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from explainlm.explanation import ExplanationSet

    es = explain([TEXT], clf, ["occlusion"], granularity="sentence")
    es.save(tmp_path / "e.json")
    (back,) = ExplanationSet.load(tmp_path / "e.json")
    assert back.units == es[0].units and back.scores == es[0].scores


def test_the_estimate_is_printed_before_long_work_even_in_a_pipe() -> None:
    out = io.StringIO()  # not a terminal: no bar, but a long stage's estimate still shows
    progress = TerminalProgress(file=out)
    progress.start("occlusion: scoring variants", total=1250, estimate_s=6_000)
    progress.start("short", total=3, estimate_s=2)
    assert out.getvalue() == "occlusion: scoring variants: 1250 steps, estimated 1 h 40 min\n"


# ------------------------------------------------------------------ prefix KV-cache reuse
LONG = " ".join(
    f"Sentence {i} says the film was {'good' if i % 3 else 'dull'} and the plot {w}."
    for i, w in enumerate(["moved", "dragged", "worked", "failed", "sang", "slept"] * 3)
)


@pytest.fixture(scope="module")
def zero_shot(tiny_llama):  # type: ignore[no-untyped-def]
    from explainlm.models import ZeroShotClassifier

    return ZeroShotClassifier(tiny_llama, labels=["negative", "positive"], calibrate=True)


def _tokens_run(model, fn):  # type: ignore[no-untyped-def]
    """Tokens the model's embedding layer saw while ``fn()`` ran."""
    seen = [0]
    hook = model.get_input_embeddings().register_forward_hook(
        lambda _m, args, _out: seen.__setitem__(0, seen[0] + args[0].numel())
    )
    try:
        out = fn()
    finally:
        hook.remove()
    return out, seen[0]


@pytest.mark.parametrize("granularity", ["word", "sentence"])
def test_causal_lm_occlusion_reuses_the_prefix_and_matches_full_forwards(
    zero_shot, monkeypatch, granularity: str
) -> None:  # type: ignore[no-untyped-def]
    from explainlm.engine import prefix

    assert zero_shot.single_token and zero_shot.calibrated

    def run():  # type: ignore[no-untyped-def]
        return explain([LONG], zero_shot, ["occlusion"], granularity=granularity, check=False)

    (reused,), with_cache = _tokens_run(zero_shot.wrapper.model, run)
    monkeypatch.setattr(prefix, "REUSE_PREFIXES", False)
    (full,), without = _tokens_run(zero_shot.wrapper.model, run)
    assert reused.scores == pytest.approx(full.scores, abs=2e-5)
    assert with_cache < 0.75 * without  # about half the tokens (the removed unit's suffix only)


def test_nested_passes_of_one_long_text_show_their_estimate_and_bar() -> None:
    """One text (a stage of one unit: no bar of its own): the engine's nested stage prints its
    estimate and gets the bar, which moves with every pass."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    progress = TerminalProgress(file=out)
    progress.start("explaining", total=1)
    inner = progress.child(1)
    inner.start("occlusion: scoring variants", total=40, estimate_s=90)
    for _ in range(10):
        inner.advance(4)
    inner.close()
    progress.advance(1)
    progress.close()
    text = out.getvalue()
    assert "occlusion: scoring variants: 40 steps, estimated 1 min 30 s" in text
    assert "100%" in text and "/40" in text  # the nested bar moved to its end


def test_a_web_job_names_the_engine_stage(tiny_bert_dir: Path) -> None:
    from explainlm.server.jobs import Job

    job = Job("j", "explain", lambda _job: None)
    job.reporter.start("explaining", total=1)
    inner = job.reporter.child(1)
    inner.start("occlusion: scoring variants", total=10)
    inner.advance(5)
    assert job.message == "explaining 0.5/1 · occlusion: scoring variants 5/10"
    assert job.progress == pytest.approx(0.5)


def test_patch_reports_progress_with_an_estimate(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    """Causal tracing shows one unit per patch (layers × positions + the corrupted run), an
    up-front estimate, and moves with every pass (a small token budget: several passes)."""
    from explainlm.internals import trace

    progress = Stages()
    advances: list[float] = []
    progress.render = lambda: advances.append(progress.done)  # type: ignore[method-assign]
    res = trace(
        tiny_llama, "The cat sat on the", target=" mat", subject="The cat",
        max_batch_tokens=32, progress=progress,
    )  # fmt: skip
    n_layers, n_pos = len(res.grid), len(res.grid[0])
    ((name, total, estimate),) = progress.stages
    assert name == "patching" and total == n_layers * n_pos + 1
    assert estimate is not None and estimate > 0
    assert advances[-1] == total and len(set(advances)) > 2  # it moved pass by pass


def test_benchmark_progress_moves_inside_a_chunk(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """One chunk of examples: the bar moves with the explanation passes, not 0 then 1 (19)."""
    import json

    from explainlm.services import benchmark
    from explainlm.services.base import ServiceContext

    data = tmp_path / "toy.jsonl"
    texts = [
        " ".join(["good film", "dull plot here", "fine cast"][i % 3] for _ in range(12))
        for i in range(6)
    ]
    data.write_text(
        "\n".join(
            json.dumps(
                {"text": t, "label": str(i % 2), "rationale": " ".join("1" for _ in t.split())}
            )
            for i, t in enumerate(texts)
        ),
        encoding="utf-8",
    )
    seen: list[float] = []

    class Watch(Progress):
        def render(self) -> None:
            if self.stage == "benchmark":
                seen.append(self.fraction)

    req = benchmark.BenchmarkRequest(
        model=str(tiny_bert_dir), dataset=str(data), methods="occlusion,lime",
        metrics="comprehensiveness", chunk_size=6, n_boot=200,
    )  # fmt: skip
    benchmark.run(req, ServiceContext(store=None, progress=Watch()))
    inside = {round(f, 3) for f in seen if 0 < f < 1}
    assert len(inside) >= 3, sorted(inside)  # several steps inside the single chunk


def test_prefix_reuse_is_taken_only_where_its_passes_are_predicted_cheaper(
    zero_shot, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """With the precision plan's measured per-pass overhead, the engine reuses prefixes where the
    reuse plan (more, smaller passes) costs less than full forwards: always at no overhead, never
    for a short text at a huge one, still for a long text at a bf16-like ~200 tokens a pass. Both
    ways give the same scores."""
    from explainlm.engine import prefix
    from explainlm.models.precision import PrecisionPlan

    short = "the film was good but the plot dragged on and on"
    model = zero_shot.wrapper.model

    def run(text: str, overhead: float | None):  # type: ignore[no-untyped-def]
        plan = PrecisionPlan(pass_overhead_tokens=overhead)
        return _tokens_run(
            model,
            lambda: explain([text], zero_shot, ["occlusion"], precision=plan, check=False)[0],
        )

    reuse, reuse_tokens = run(short, 0.0)
    full_forced, forced_tokens = run(short, 1e6)
    monkeypatch.setattr(prefix, "REUSE_PREFIXES", False)
    full, full_tokens = run(short, None)
    long_full, long_full_tokens = run(LONG, None)
    monkeypatch.setattr(prefix, "REUSE_PREFIXES", True)
    assert reuse_tokens < full_tokens and forced_tokens == full_tokens
    assert full_forced.scores == pytest.approx(full.scores, abs=1e-6)
    assert reuse.scores == pytest.approx(full.scores, abs=2e-5)
    long_reuse, long_tokens = run(LONG, 200.0)
    assert long_tokens < 0.75 * long_full_tokens
    assert long_reuse.scores == pytest.approx(long_full.scores, abs=2e-5)
