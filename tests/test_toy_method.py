"""A method written in one file works everywhere: the CLI, the web API and the run store.

The toy method below is the whole change a contributor makes: a :class:`Method` subclass in the
method registry. Nothing else in the code base knows about it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from explainlm.cli.app import main
from explainlm.methods import METHODS, Method
from explainlm.server import ModelSpec, ServerConfig, create_app
from explainlm.store import open_store


class Toy(Method):
    """Toy attribution: each word scores its length in characters times ``weight``."""

    name = "toy"
    defaults = {"weight": 1.0}
    citation = "a test of the method contract"

    def _attribute(self, engine: Any, items: Any, granularity: str) -> list[dict[str, Any]]:
        w = float(self.params["weight"])
        return [{"word_scores": [w * len(word) for word in it.encoding.words]} for it in items]


@pytest.fixture()
def toy() -> Iterator[type[Method]]:
    """Register the toy method for one test (a Registry's ``temporarily``; a plain dict until the
    core branch makes METHODS a Registry)."""
    if hasattr(METHODS, "temporarily"):
        with METHODS.temporarily("toy", Toy):
            yield Toy
    else:
        METHODS["toy"] = Toy
        try:
            yield Toy
        finally:
            del METHODS["toy"]


TEXT = "a truly wonderful film"
EXPECTED = [2.0 * len(w) for w in TEXT.split()]  # weight 2: [2, 10, 18, 8]


def test_toy_method_in_the_cli_and_the_store(toy: Any, tiny_bert_dir: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["explain", TEXT, "--model", str(tiny_bert_dir), "--method", "toy",
                     "--param", "toy.weight=2", "--json"])  # fmt: skip
    assert code == 0
    doc = json.loads(out.getvalue())
    (e,) = doc["explanations"]
    assert (e["method"], e["units"], e["scores"]) == ("toy", TEXT.split(), EXPECTED)
    stored = open_store().load_explanations(doc["run_id"])
    assert [(x.method, x.word_scores, x.params) for x in stored] == [
        ("toy", EXPECTED, {"weight": 2})
    ]
    assert open_store().get_run(doc["run_id"]).params["methods"] == ["toy"]


def test_toy_method_in_the_web_api(toy: Any, tiny_bert_dir: Path) -> None:
    config = ServerConfig(models=[ModelSpec("tiny-bert", str(tiny_bert_dir))])
    with TestClient(create_app(config), base_url="http://localhost") as client:
        listed = {m["name"]: m for m in client.get("/api/methods").json()["methods"]}
        assert listed["toy"]["params"] == {"weight": {"default": 1.0, "type": "number"}}
        assert listed["toy"]["description"].startswith("Toy attribution")
        body = {"text": TEXT, "methods": ["toy", "occlusion"], "params": {"toy": {"weight": 2}}}
        d = client.post("/api/explain", json=body).json()
        assert [e["method"] for e in d["explanations"]] == ["toy", "occlusion"]
        assert d["explanations"][0]["scores"] == EXPECTED
        run = client.get(f"/api/runs/{d['run_id']}").json()
        assert run["explanations"][0]["scores"] == EXPECTED
        bad = client.post("/api/explain", json={**body, "params": {"toy": {"size": 2}}})
        assert bad.status_code == 400 and "unknown parameter" in bad.json()["error"]


def test_unknown_method_lists_the_toy(toy: Any) -> None:
    from explainlm.errors import UserError
    from explainlm.services import ExplainRequest, build_request

    with pytest.raises(UserError, match="known: .*toy"):
        build_request(ExplainRequest, texts=["x"], methods=["toi"])
