"""Shared fixtures: tiny randomly initialised models (real tokenizers, tiny configs) and the data dir.

The tiny models use the real tokenizers of the two built-in models, so word grouping is tested on
real WordPiece and byte-level BPE vocabularies while every forward pass stays cheap.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from explainlm.models import ModelWrapper
from explainlm.models.sources import resolve_source
from explainlm.models.tiny import build_tiny_bert, build_tiny_llama
from explainlm.paths import data_dir as resolve_data_dir


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own run store; the model cache stays shared (it is expensive to build)."""
    monkeypatch.setenv("EXPLAINLM_HOME", str(tmp_path_factory.mktemp("home")))
    # precision "auto" means fp32 in tests (no per-test measurement of the real models; reference
    # comparisons are float32); tests of auto itself unset this
    monkeypatch.setenv("EXPLAINLM_PRECISION", "fp32")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (or ``EXPLAINLM_DATA``); its absence fails loudly with the path looked for."""
    return resolve_data_dir()


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return resolve_source("minilm-l6").path


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    return resolve_source("smollm2-135m").path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A 2-layer, 32-dim random BERT sequence classifier with MiniLM's WordPiece tokenizer."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), minilm_dir)


@pytest.fixture(scope="session")
def tiny_llama_builder(smollm_dir: Path) -> Callable[..., Path]:
    """``build(out, **shape)``: a tiny random Llama with SmolLM2's tokenizer (build_tiny_llama),
    for tests that need another shape than ``tiny_llama_dir``'s."""
    return functools.partial(build_tiny_llama, tokenizer_dir=smollm_dir)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path) -> Path:
    """A 2-layer, 32-dim random Llama causal LM with SmolLM2's byte-level BPE tokenizer."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), smollm_dir)


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_dir: Path) -> ModelWrapper:
    return ModelWrapper.load(str(tiny_bert_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir: Path) -> ModelWrapper:
    return ModelWrapper.load(str(tiny_llama_dir), device="cpu")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def lexicon_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A BERT classifier whose hand-set weights make it a sentiment lexicon with a closed form
    (tests/whatif_support.py): a known model for the what-if tests."""
    from whatif_support import build_lexicon_bert

    return build_lexicon_bert(tmp_path_factory.mktemp("lexicon-bert"), minilm_dir)
