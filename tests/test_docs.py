"""The docs' runnable examples, run: every ```python block of README.md and docs/*.md.

The blocks of one page run in order in one namespace (like a notebook), in a fresh working
directory that holds the files the examples name. A line ``<!-- docs-test: DIRECTIVE -->`` just
above a block changes how it runs (the marker stays visible in the Markdown source):

* ``tiny-models: REASON`` — the built-in ``smollm2-135m`` is a tiny random model with its
  architecture, tokenizer, layer and head counts (a model cache holding it stands in,
  ``EXPLAINLM_CACHE``); for examples too slow on the real model in CI. Every other block runs on
  the real models.
* ``skip: REASON`` — not run (e.g. it needs a model hub); reported as a skip with the reason.

Files in the working directory: ``models/minilm-sst2`` is a tiny random BERT classifier (labels
negative, positive) standing in for the classifier trained in benchmarks/RESULTS.md;
``train.tsv``, ``dev.tsv`` and ``test.tsv`` are small SST-2 slices (columns ``sentence``,
``label``).
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*```python\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(tiny-models|skip)\s*:\s*(.+?)\s*-->\s*$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    code: str
    directive: str | None = None
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The page's python blocks, each with the directive just above it (blank lines between ok)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            start = i
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            block = Block(page, start + 1, textwrap.dedent("\n".join(lines[start + 1 : j])))
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            if k >= 0 and (m := DIRECTIVE.match(lines[k].strip())):
                block.directive, block.reason = m.group(1), m.group(2)
            out.append(block)
            i = j
        i += 1
    return out


def test_directives_are_well_formed() -> None:
    """A ``docs-test`` comment that does not parse would silently do nothing: refuse it."""
    for page in PAGES:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip().startswith("<!--") and "docs-test" in line:
                assert DIRECTIVE.match(line.strip()), f"{page.name}:{n}: {line!r}"


def test_blocks_are_found() -> None:
    found = {p.name: len(blocks(p)) for p in PAGES}
    assert found["README.md"] >= 1 and found["internals.md"] >= 5 and sum(found.values()) >= 10


WORKDIRS: dict[Path, Path] = {}


@pytest.fixture()
def workdir(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_bert_dir: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The page's working directory (one per page, shared by its blocks), as the cwd."""
    page = request.node.callspec.params["block"].page
    if page not in WORKDIRS:
        d = tmp_path_factory.mktemp(f"docs-{page.stem}")
        (d / "models").mkdir()
        (d / "models" / "minilm-sst2").symlink_to(tiny_bert_dir, target_is_directory=True)
        sst2 = data_dir / "sst2"
        for name, n in (("train", 96), ("dev", 48), ("test", 48)):
            rows = (sst2 / f"{name}.tsv").read_text(encoding="utf-8").splitlines()[: n + 1]
            (d / f"{name}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        WORKDIRS[page] = d
    monkeypatch.setenv("EXPLAINLM_DATA", str(data_dir))
    monkeypatch.chdir(WORKDIRS[page])
    return WORKDIRS[page]


@pytest.fixture(scope="session")
def tiny_cache(
    tmp_path_factory: pytest.TempPathFactory, tiny_llama_builder: Callable[..., Path]
) -> Path:
    """A model cache whose ``smollm2-135m`` is a tiny random Llama with SmolLM2's tokenizer and
    shape (30 layers, 9 query heads, 3 key/value heads), but 36 dimensions instead of 576 — so
    the examples' layer and head indices stay valid."""
    out = tmp_path_factory.mktemp("tiny-cache") / "smollm2-135m"
    tiny_llama_builder(
        out,
        hidden_size=36,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=2048,
    )
    meta = {"cache_format": 1, "source": "tiny random stand-in", "kind": "causal_lm"}
    (out / "explainlm.json").write_text(json.dumps(meta))
    return out.parent


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]
NAMESPACES: dict[Path, dict[str, object]] = {}
FAILED: dict[Path, str] = {}


@pytest.mark.real
@pytest.mark.data
@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.where for b in ALL_BLOCKS])
def test_doc_example_runs(
    block: Block, workdir: Path, tiny_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One block, in its page's namespace (the page's earlier blocks ran before it)."""
    import matplotlib

    matplotlib.use("Agg")
    if block.directive == "skip":
        pytest.skip(f"{block.where}: {block.reason}")
    if block.page in FAILED:
        pytest.fail(f"an earlier block of this page failed: {FAILED[block.page]}")
    if block.directive == "tiny-models":
        monkeypatch.setenv("EXPLAINLM_CACHE", str(tiny_cache))
    namespace = NAMESPACES.setdefault(block.page, {"__name__": f"docs_{block.page.stem}"})
    start = time.perf_counter()
    try:
        exec(compile(block.code, block.where, "exec"), namespace)  # noqa: S102
    except Exception as e:
        FAILED[block.page] = block.where
        raise AssertionError(f"{block.where} failed: {type(e).__name__}: {e}") from e
    print(f"{block.where}: {time.perf_counter() - start:.1f} s")
