"""The ``global`` service: requests, recorded and resumable runs, reuse of stored attributions."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from explainlm.behaviour.importance import GlobalImportance
from explainlm.errors import UserError
from explainlm.models.blackbox import BlackBoxClassifier
from explainlm.progress import Progress
from explainlm.services import behaviour as svc
from explainlm.services.base import LocalModels, ServiceContext, build_request
from explainlm.store import open_store

POSITIVE = {"good": 1.5, "great": 2.0, "fun": 1.0}
NEGATIVE = {"bad": -1.5, "dull": -1.0, "not": -0.8}
FILLER = ["the", "film", "plot", "a", "story", "actors", "music", "is", "and"]


def toy_proba(texts: list[str]) -> np.ndarray:
    """A linear bag-of-words model: logit = Σ word weights."""
    w = {**POSITIVE, **NEGATIVE}
    z = np.array([sum(w.get(t, 0.0) for t in s.lower().split()) for s in texts])
    p = 1 / (1 + np.exp(-z))
    return np.stack([1 - p, p], axis=1)


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    vocab = list(POSITIVE) + list(NEGATIVE) + FILLER * 2
    texts = [" ".join(rng.choice(vocab, size=rng.integers(4, 9))) for _ in range(n)]
    gold = ["positive" if toy_proba([t])[0, 1] > 0.5 else "negative" for t in texts]
    return texts, gold


class Models:
    """A model provider that hands out one black box (and counts what it is asked)."""

    def __init__(self) -> None:
        self.clf = BlackBoxClassifier(toy_proba, ["negative", "positive"], name="toy")

    def task(self, name: str, task: str | None = None, **options: Any) -> Any:
        return self.clf

    def lock(self, name: str) -> Any:
        return nullcontext()


class StopAfter(Progress):
    """Cancels the job once ``n`` units of the named stage are done."""

    def __init__(self, stage: str, n: int) -> None:
        super().__init__()
        self.when, self.n = stage, n

    def advance(self, n: float = 1, message: str | None = None) -> None:
        super().advance(n, message)
        if self.stage == self.when and self.done >= self.n:
            self.cancel()


def ctx(models: Models, progress: Progress | None = None) -> ServiceContext:
    return ServiceContext(store=open_store(), progress=progress or Progress(), models=models)


def test_importance_is_recorded_resumable_and_exported(tmp_path: Path) -> None:
    texts, gold = corpus(60)
    models = Models()
    req = build_request(
        svc.ImportanceRequest,
        model="toy",
        texts=texts,
        gold=gold,
        chunk_size=8,
        min_count=3,
        check_faithfulness=20,
        outputs=[str(tmp_path / "imp.json"), str(tmp_path / "imp.html")],
    )
    with pytest.raises(Exception, match="cancelled"):
        svc.run(req, ctx(models, StopAfter("explaining", 20)))
    store = open_store()
    first = store.list_runs(command="global-importance")[0]
    assert first.status == "cancelled"  # a cancellation is not a failure
    stored = store.get_items(first.run_id, svc.EXPLANATIONS)
    assert 20 <= len(stored) < 60
    again = Models()  # a fresh model (empty cache), no faithfulness check: count what is sent
    resumed = svc.run(
        req.model_copy(update={"resume": first.run_id, "check_faithfulness": 0}), ctx(again)
    )
    assert resumed.run_id == first.run_id and store.get_run(first.run_id).status == "finished"
    # the resumed run explained only the texts that were not stored (occlusion: ≤ n+1 texts each)
    remaining = [t for i, t in enumerate(texts) if f"{i:06d}" not in stored]
    assert 0 < again.clf.texts_sent <= sum(len(t.split()) + 1 for t in remaining)
    resumed = GlobalImportance.load(tmp_path / "imp.json")
    fresh = svc.run(req.model_copy(update={"outputs": []}), ctx(Models()))
    assert resumed.table == fresh.table
    top_pos = [r["feature"] for r in resumed.top("positive", 3)]
    assert set(top_pos) <= set(POSITIVE) and resumed.top("negative", 1)[0]["feature"] in NEGATIVE
    assert fresh.meta["trust"][0]["ok"] is True and "Faithfulness check" in fresh.html()
    summary = store.get_run(first.run_id).summary
    assert summary["files"] and summary["table"]
    with pytest.raises(UserError, match="cannot resume .* its method"):
        svc.run(req.model_copy(update={"resume": first.run_id, "method": "lime"}), ctx(models))


def test_surrogates_on_bow_and_top_words_and_sensitivity_reuse() -> None:
    texts, gold = corpus(200, seed=1)
    models = Models()
    imp = svc.run(
        build_request(
            svc.ImportanceRequest, model="toy", texts=texts, gold=gold, check_faithfulness=0
        ),
        ctx(models),
    )
    req = build_request(
        svc.SurrogateRequest,
        model="toy",
        texts=texts,
        gold=gold,
        features=["bow", "top_words"],
        top_k=6,
        importance_run=imp.run_id,
        n_boot=200,
    )
    res = svc.run(req, ctx(models))
    assert {(r.kind, r.feature_set.split()[0]) for r in res.reports} == {
        ("tree", "bow"),
        ("logistic", "bow"),
        ("tree", "top-6"),
        ("logistic", "top-6"),
    }
    assert set(res.meta["top_words"]["words"]) <= set(POSITIVE) | set(NEGATIVE) | set(FILLER)
    assert res.report("logistic", "bow").fidelity["value"] > 0.85
    # the same split without the importance run: attributions of the training texts only
    fresh = svc.run(req.model_copy(update={"importance_run": None}), ctx(models))
    stored = open_store().get_items(fresh.run_id, svc.EXPLANATIONS)
    assert len(stored) == res.reports[0].n_train
    sens = svc.run(
        build_request(
            svc.SensitivityRequest,
            model="toy",
            texts=texts,
            importance_run=imp.run_id,
            n_random=2,
            n_boot=200,
        ),
        ctx(models),
    )
    assert sens.difference["value"] > 0 and sens.difference["p_value"] < 0.05
    assert sens.meta["n_texts"] == len(texts)
    from explainlm.behaviour.report import combined_html

    page = combined_html([imp, res, sens], "toy <model>")
    assert page.count("<h1>") == 4 and "toy <model>" not in page  # title + three sections


def test_layers_service_and_request_validation(tiny_bert_dir: Path, tmp_path: Path) -> None:
    req = build_request(
        svc.LayersRequest,
        model=str(tiny_bert_dir),
        texts=["a fine film", "dull"],
        outputs=[str(tmp_path / "l.png")],
    )
    res = svc.run(req, ServiceContext(store=open_store(), models=LocalModels(device="cpu")))
    assert res.points == ["layers.0.resid_post", "layers.1.resid_post"] and len(res.texts) == 2
    assert (tmp_path / "l.png").exists()
    with pytest.raises(UserError, match="either a dataset or texts"):
        build_request(svc.ImportanceRequest, texts=["a"], dataset="sst2")
    with pytest.raises(UserError, match="unknown method"):
        build_request(svc.ImportanceRequest, texts=["a"], method="magic")
    with pytest.raises(UserError, match="output"):
        build_request(svc.SurrogateRequest, texts=["a"], outputs=["x.docx"])
    with pytest.raises(UserError, match="min_count"):
        build_request(svc.ImportanceRequest, texts=["a"], min_count=0)


def test_an_importance_run_on_a_prefix_feeds_top_words_but_not_other_texts() -> None:
    texts, gold = corpus(120, seed=3)
    models = Models()
    imp = svc.run(
        build_request(svc.ImportanceRequest, model="toy", texts=texts[:50], check_faithfulness=0),
        ctx(models),
    )
    req = build_request(
        svc.SurrogateRequest,
        model="toy",
        texts=texts,
        features=["top_words"],
        top_k=5,
        importance_run=imp.run_id,
        n_boot=100,
    )
    res = svc.run(req, ctx(models))
    train = res.reports[0].n_train
    used = int(res.meta["top_words"]["from"].split()[0])
    assert 0 < used < 50 and used < train  # only attributed texts of the training split
    with pytest.raises(UserError, match="explained 50 of these 120 texts"):
        svc.run(
            build_request(
                svc.SensitivityRequest, model="toy", texts=texts, importance_run=imp.run_id
            ),
            ctx(models),
        )
    other, _ = corpus(120, seed=4)
    with pytest.raises(UserError, match="explained other texts"):
        svc.run(req.model_copy(update={"texts": other}), ctx(models))
