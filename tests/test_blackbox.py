"""Black-box models: perturbation methods and metrics on a scikit-learn pipeline and on HTTP endpoints.

Oracles: a naive occlusion loop, brute-force Shapley values, the ``lime`` package, and real HTTP
servers on 127.0.0.1 (our own web API, and a small misbehaving app), never mocks.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import Request
from servers import serve

from explainlm import explain
from explainlm.errors import UserError
from explainlm.evaluation import evaluate
from explainlm.evaluation.faithfulness import ERASER_BINS, top_k_sets
from explainlm.methods.perturbation import lime_fit, lime_masks
from explainlm.models import load_model
from explainlm.models.blackbox import BlackBoxClassifier, EndpointError
from explainlm.models.blackbox_loading import is_blackbox_spec, load_blackbox
from explainlm.models.endpoint import HttpClassifier
from explainlm.models.words import remove_words, split_words

# The engine holds class scores as float32, so black-box probabilities pass through float32 log-probs:
# equal to the float64 oracles within ~1e-7 relative; 1e-6 absolute on probabilities ≤ 1 covers it.
F32 = 1e-6

TEXTS = [
    "a gorgeous , witty , seductive movie .",
    "the plot is dull and the acting is worse .",
    "an uneven but often funny film that never quite finds its footing .",
]


@pytest.fixture(scope="module")
def pipeline(data_dir: Path) -> Any:
    """TF-IDF + logistic regression fitted on the first 3,000 SST-2 training sentences."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from explainlm.datasets import read_table

    t = read_table(
        data_dir / "sst2" / "train.tsv", text_column="sentence", label_column="label", limit=3000
    )
    labels = ["negative" if y == "0" else "positive" for y in t.labels or []]
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=1000))
    return pipe.fit(t.texts, labels)


@pytest.fixture()
def clf(pipeline: Any) -> BlackBoxClassifier:
    return BlackBoxClassifier.from_sklearn(pipeline)


def naive_occlusion(pipe: Any, text: str) -> tuple[str, np.ndarray]:
    """f(x) − f(x without word j) for the predicted label, one pipeline call per reduced text."""
    classes = list(pipe.classes_)
    p = pipe.predict_proba([text])[0]
    c = int(np.argmax(p))
    spans = split_words(text)
    out = []
    for j in range(len(spans)):
        keep = [k != j for k in range(len(spans))]
        out.append(p[c] - pipe.predict_proba([remove_words(text, spans, keep)])[0][c])
    return classes[c], np.array(out)


@pytest.mark.data
def test_occlusion_on_a_pipeline_equals_a_naive_loop(
    pipeline: Any, clf: BlackBoxClassifier
) -> None:
    exps = explain(TEXTS, clf, ["occlusion"])
    assert clf.labels == ["negative", "positive"]
    for e, text in zip(exps, TEXTS, strict=True):
        label, expected = naive_occlusion(pipeline, text)
        assert e.label == label and e.words == [text[s:e2] for s, e2 in split_words(text)]
        np.testing.assert_allclose(e.word_scores, expected, atol=F32)


@pytest.mark.data
def test_cache_answers_repeated_texts(clf: BlackBoxClassifier) -> None:
    text = "good good good film ."  # removing any one "good" gives the same text
    # occlusion's own queries only (the faithfulness check, off here, would add its masks)
    explain([text], clf, ["occlusion"], check=False)
    # the original, "good good film ." once for three occlusions, "good good good ." and
    # "good good good film": 4 distinct texts for 6 evaluations (prepare + 5 occlusions)
    assert clf.texts_sent == 4 and clf.cache_hits == 2
    explain([text], clf, ["occlusion"], check=False)
    assert clf.texts_sent == 4  # everything cached now


@pytest.mark.data
def test_lime_kernel_and_regression_equal_the_lime_package(clf: BlackBoxClassifier) -> None:
    """Deterministic half: on the same samples, our kernel + ridge fit is lime's to 1e-10."""
    from lime.lime_base import LimeBase
    from sklearn.metrics import pairwise_distances

    text = TEXTS[2]
    item_words = split_words(text)
    d = len(item_words)
    masks = lime_masks(d, 500, 7)
    texts = [remove_words(text, item_words, row) for row in masks]
    probs = clf.probabilities(texts)
    label = int(np.argmax(probs[0]))
    ours, _ = lime_fit(masks, probs[:, label], 25.0, 1.0)

    def kernel(dist: np.ndarray) -> np.ndarray:
        return np.sqrt(np.exp(-(dist**2) / 25.0**2))

    dist = pairwise_distances(masks.astype(float), masks[:1].astype(float), metric="cosine")
    dist = dist.ravel() * 100
    base = LimeBase(kernel, random_state=0)
    _, exp, _, _ = base.explain_instance_with_data(
        masks.astype(float), probs, dist, label, d, feature_selection="none"
    )
    theirs = np.zeros(d)
    for j, w in exp:
        theirs[j] = w
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


@pytest.mark.data
def test_lime_equals_the_lime_package_in_expectation(
    pipeline: Any, clf: BlackBoxClassifier
) -> None:
    """Same kernel (width 25), same budget (2,000 samples), same sampler, different random streams.

    Both estimates are unbiased draws around the same population fit, so over R seeds each their
    means differ by noise of standard error sqrt(s_ours²/R + s_lime²/R), with s the seed-to-seed
    standard deviation we measure. We require every coefficient's difference of means to lie within
    5 standard errors (a 5-sigma band: a false failure has probability < 1e-5 per coefficient,
    while a wrong kernel, sampler or target moves coefficients by many standard errors: see the
    kernel-width check below). Texts are small enough for this to run in seconds.
    """
    from lime.lime_text import LimeTextExplainer

    text, n, reps = TEXTS[0], 2000, 8
    words = [text[s:e] for s, e in split_words(text)]
    d = len(words)
    label = int(np.argmax(pipeline.predict_proba([text])[0]))

    def lime_run(seed: int, width: float = 25.0) -> np.ndarray:
        explainer = LimeTextExplainer(
            kernel_width=width,
            bow=False,
            split_expression=lambda s: [s[a:b] for a, b in split_words(s)],
            random_state=seed,
            feature_selection="none",
        )
        exp = explainer.explain_instance(
            text, pipeline.predict_proba, labels=(label,), num_features=d, num_samples=n
        )
        out = np.zeros(d)
        for j, w in exp.as_map()[label]:
            out[j] = w
        return out

    theirs = np.array([lime_run(s) for s in range(reps)])
    ours = np.array(
        [
            explain([text], clf, ["lime"], method_params={"lime": {"n_samples": n, "seed": s}})[
                0
            ].word_scores
            for s in range(reps)
        ]
    )
    se = np.sqrt(ours.var(0, ddof=1) / reps + theirs.var(0, ddof=1) / reps)
    diff = np.abs(ours.mean(0) - theirs.mean(0))
    assert np.all(diff <= 5 * se + 1e-9), (diff / se).round(2)
    # the test has power: a different kernel width moves the coefficients far outside the band
    wide = np.array([lime_run(s, width=250.0) for s in range(reps)])
    se_w = np.sqrt(wide.var(0, ddof=1) / reps + theirs.var(0, ddof=1) / reps)
    assert np.max(np.abs(wide.mean(0) - theirs.mean(0)) / se_w) > 5


@pytest.mark.data
def test_kernel_shap_on_a_pipeline_equals_brute_force_shapley(
    pipeline: Any, clf: BlackBoxClassifier
) -> None:
    text = "a gorgeous , witty movie ."
    spans = split_words(text)
    d = len(spans)
    e = explain([text], clf, ["kernel_shap"])[0]
    c = list(pipeline.classes_).index(e.label)

    def f(keep: tuple[bool, ...]) -> float:
        return float(pipeline.predict_proba([remove_words(text, spans, keep)])[0][c])

    phi = np.zeros(d)
    for i in range(d):
        for keep in itertools.product([False, True], repeat=d):
            if keep[i]:
                continue
            s = sum(keep)
            w = math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d)
            with_i = tuple(True if k == i else v for k, v in enumerate(keep))
            phi[i] += w * (f(with_i) - f(keep))
    np.testing.assert_allclose(e.word_scores, phi, atol=F32)


@pytest.mark.data
def test_faithfulness_metrics_on_a_black_box(pipeline: Any, clf: BlackBoxClassifier) -> None:
    exps = explain(TEXTS, clf, ["occlusion"])
    res = evaluate(exps, ["comprehensiveness", "tau_loo"], classifier=clf)
    comp = [r["value"] for r in res.rows if r["metric"] == "comprehensiveness"]
    for e, value in zip(exps, comp, strict=True):
        spans = split_words(e.text)
        c = list(pipeline.classes_).index(e.label)
        full = pipeline.predict_proba([e.text])[0][c]
        drops = []
        for idx in top_k_sets(np.array(e.word_scores), ERASER_BINS):
            keep = [j not in set(idx.tolist()) for j in range(len(spans))]
            drops.append(full - pipeline.predict_proba([remove_words(e.text, spans, keep)])[0][c])
        assert value == pytest.approx(float(np.mean(drops)), abs=F32)
    tau = [r["value"] for r in res.rows if r["metric"] == "tau_loo"]
    assert tau == pytest.approx([1.0] * 3)  # occlusion is leave-one-out, computed separately


def toy_proba(texts: list[str]) -> np.ndarray:
    p = np.array([0.8 if "good" in t.split() else 0.3 for t in texts])
    return np.stack([1 - p, p], axis=1)


def test_gradient_methods_refuse_black_boxes() -> None:
    clf = BlackBoxClassifier(toy_proba, ["neg", "pos"], name="toy")
    with pytest.raises(UserError, match="black-box model: only perturbation"):
        explain(["a good film"], clf, ["integrated_gradients"])
    with pytest.raises(UserError, match="black-box"):
        explain(["a good film"], clf, ["attention"])


def test_masking_replaces_words_with_the_mask_string() -> None:
    seen: list[str] = []

    def spy(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return toy_proba(texts)

    clf = BlackBoxClassifier(spy, ["neg", "pos"], mask_token="<unk>")
    e = explain(
        ["a good film"],
        clf,
        ["occlusion"],
        method_params={"occlusion": {"replace": "mask"}},
        check=False,  # the texts occlusion sends, without the check's
    )[0]
    assert seen == ["a good film", "<unk> good film", "a <unk> film", "a good <unk>"]
    assert e.word_scores == pytest.approx([0.0, 0.5, 0.0])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda n: np.ones((n, 3)) / 3, r"expected \d+ × 2 probabilities"),
        (lambda n: np.full((n, 2), 0.7), "sum to 1.4, not 1"),
        (lambda n: [{"neg": 0.5}] * n, "no probability for pos"),
        (lambda n: [["a", "b"]] * n, "not numeric"),
        (lambda n: np.full((n, 2), np.nan), "finite and non-negative"),
    ],
)
def test_bad_answers_are_clear_errors(answer: Any, message: str) -> None:
    clf = BlackBoxClassifier(lambda texts: answer(len(texts)), ["neg", "pos"], name="bad")
    with pytest.raises(EndpointError, match=message):
        clf.predict(["a text"])


def test_load_blackbox_specs(tmp_path: Path) -> None:
    import joblib
    from sklearn.dummy import DummyClassifier

    assert is_blackbox_spec("http://x/api") and is_blackbox_spec("pkg.mod:fn")
    assert not is_blackbox_spec("smollm2-135m") and not is_blackbox_spec("models/minilm-sst2")
    dummy = DummyClassifier(strategy="prior").fit([[0], [1], [1]], ["a", "b", "b"])
    wrapped = BlackBoxClassifier.from_sklearn(dummy)
    assert wrapped.labels == ["a", "b"]
    path = tmp_path / "m.joblib"
    joblib.dump(dummy, path)
    assert load_blackbox(str(path)).labels == ["a", "b"]
    with pytest.raises(UserError, match="give its labels"):
        load_blackbox("numpy:ones_like")
    with pytest.raises(UserError, match="cannot import"):
        load_blackbox("no_such_module_xyz:f")


# -------------------------------------------------------------------------------------- HTTP
@pytest.fixture(scope="module")
def api(tiny_bert_dir: Path) -> Any:
    """Our own web API on 127.0.0.1 serving the tiny BERT classifier."""
    from explainlm.server import ModelSpec, ServerConfig, create_app

    app = create_app(ServerConfig(models=[ModelSpec("tiny-bert", str(tiny_bert_dir))], workers=1))
    with serve(app) as url:
        yield url


def test_http_endpoint_equals_the_local_model(api: str, tiny_bert_dir: Path) -> None:
    remote = HttpClassifier(f"{api}/api/predict", body={"model": "tiny-bert"}, empty_text=".")
    assert remote.labels == ["negative", "positive"]  # read from the answer
    local = load_model(str(tiny_bert_dir), device="cpu")
    texts = ["a gorgeous , witty movie .", "dull and slow"]
    # occlusion never empties a text of 2+ words: the white-box model itself is the oracle
    pairs = zip(
        explain(texts, remote, ["occlusion"]), explain(texts, local, ["occlusion"]), strict=True
    )
    for a, b in pairs:
        assert a.label == b.label and a.words == b.words
        np.testing.assert_allclose(a.word_scores, b.word_scores, atol=1e-5)

    # KernelSHAP and LIME evaluate the empty text, which the API refuses, so the endpoint gets the
    # stand-in "."; the oracle is the same local model called in-process with the same stand-in
    def local_proba(batch: list[str]) -> list[dict[str, float]]:
        return [p.probs for p in local.predict(batch)]

    in_process = BlackBoxClassifier(local_proba, local.labels, empty_text=".")
    for method in ("kernel_shap", "lime"):
        r = explain(texts, remote, [method])
        loc = explain(texts, in_process, [method])
        for a, b in zip(r, loc, strict=True):
            assert a.label == b.label
            np.testing.assert_allclose(a.word_scores, b.word_scores, atol=1e-5)
    assert remote.http.requests >= 2 and remote.cache_hits > 0


def test_http_errors_from_our_api_are_clear(api: str) -> None:
    with pytest.raises(EndpointError, match="HTTP 400: unknown model"):
        HttpClassifier(f"{api}/api/predict", body={"model": "nope"})
    clf = HttpClassifier(
        f"{api}/api/predict", ["negative", "positive"], body={"model": "tiny-bert"}, batch_size=40
    )
    with pytest.raises(EndpointError, match="HTTP 413: too many texts"):
        clf.predict([f"text {i}" for i in range(40)])
    with pytest.raises(EndpointError, match="cannot find per-text answers"):
        HttpClassifier(
            f"{api}/api/predict",
            ["negative", "positive"],
            body={"model": "tiny-bert"},
            texts_field="texts",
        ).http.entries({"models": []})


@pytest.fixture(scope="module")
def faulty() -> Any:
    """A small real server that fails, stalls or answers garbage on purpose."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, PlainTextResponse

    app = FastAPI()
    state = {"flaky": 0, "busy": 0}
    lock = threading.Lock()

    def answer(texts: list[str]) -> list[dict[str, Any]]:
        return [{"label": "x", "probs": {"neg": 0.25, "pos": 0.75}} for _ in texts]

    @app.post("/flaky")
    async def flaky(req: Request) -> Any:
        body = await req.json()
        with lock:
            state["flaky"] += 1
            n = state["flaky"]
        if n % 3 != 0:  # two failures, then an answer
            return JSONResponse({"error": "overloaded"}, status_code=503)
        return {"predictions": answer(body["texts"])}

    @app.post("/busy")
    async def busy(req: Request) -> Any:
        body = await req.json()
        with lock:
            state["busy"] += 1
            n = state["busy"]
        if n == 1:
            return JSONResponse({"error": "busy"}, status_code=429, headers={"Retry-After": "0"})
        return answer(body["texts"])

    @app.post("/slow")
    def slow() -> Any:
        time.sleep(1.0)
        return {"predictions": []}

    @app.post("/garbage")
    async def garbage() -> Any:
        return PlainTextResponse("<html>oops</html>")

    @app.post("/short")
    async def short() -> Any:
        return {"predictions": answer(["one"])}

    @app.post("/logprobs")
    async def logprobs(req: Request) -> Any:
        body = await req.json()
        return {"logprobs": [{"neg": math.log(0.2), "pos": math.log(0.6)} for _ in body["texts"]]}

    @app.post("/down")
    async def down() -> Any:
        return JSONResponse({"error": "down for maintenance"}, status_code=500)

    with serve(app) as url:
        yield url, state


def test_retries_and_retry_after(faulty: Any) -> None:
    url, state = faulty
    clf = HttpClassifier(f"{url}/flaky", backoff_s=0.01)
    assert clf.labels == ["neg", "pos"]
    assert clf.http.requests == 3 and clf.http.retries == 2
    assert clf.predict(["a", "b"])[0].probs == pytest.approx({"neg": 0.25, "pos": 0.75})
    busy = HttpClassifier(f"{url}/busy", ["neg", "pos"], backoff_s=30)  # Retry-After: 0 wins
    start = time.monotonic()
    busy.predict(["a"])
    assert busy.http.retries == 1 and time.monotonic() - start < 5


def test_timeouts_and_exhausted_retries(faulty: Any) -> None:
    url, _ = faulty
    clf = HttpClassifier(f"{url}/slow", ["neg", "pos"], timeout_s=0.2, max_retries=1, backoff_s=0)
    with pytest.raises(EndpointError, match=r"no answer after 2 attempts \(last: timed out"):
        clf.predict(["a"])
    down = HttpClassifier(f"{url}/down", ["neg", "pos"], max_retries=2, backoff_s=0)
    with pytest.raises(EndpointError, match="after 3 attempts.*HTTP 500: down for maintenance"):
        down.predict(["a"])
    with pytest.raises(EndpointError, match="no answer after 1 attempts"):
        HttpClassifier("http://127.0.0.1:9/none", ["a", "b"], max_retries=0).predict(["x"])


def test_bad_responses(faulty: Any) -> None:
    url, _ = faulty
    with pytest.raises(EndpointError, match="not JSON"):
        HttpClassifier(f"{url}/garbage", ["neg", "pos"]).predict(["a"])
    with pytest.raises(EndpointError, match="1 answers for 2 texts"):
        HttpClassifier(f"{url}/short", ["neg", "pos"]).predict(["a", "b"])


def test_logprob_answers_are_normalised(faulty: Any) -> None:
    url, _ = faulty
    clf = HttpClassifier(f"{url}/logprobs")
    assert clf.predict(["a"])[0].probs == pytest.approx({"neg": 0.25, "pos": 0.75})


def test_rate_limit_spaces_requests(faulty: Any) -> None:
    url, _ = faulty
    clf = HttpClassifier(f"{url}/logprobs", ["neg", "pos"], batch_size=1, max_requests_per_s=20)
    start = time.monotonic()
    clf.predict([f"t{i}" for i in range(6)])
    assert clf.http.requests == 6
    assert time.monotonic() - start >= 5 / 20 - 1e-3
