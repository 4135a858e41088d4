"""``explainlm generate --input FILE``: every row's prompt generated and attributed, in order,
chunk by chunk; one-line errors for a bad file or contradictory options, before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explainlm.cli.app import main
from explainlm.generation import explain_generation
from explainlm.models import load_model
from explainlm.store import open_store

PROMPTS = ["The film was", "A dull plot and", "Music is"]


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_file_of_prompts_in_chunks(
    capsys: pytest.CaptureFixture[str], tiny_llama_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n")
    args = ["generate", "--input", path, "-m", tiny_llama_dir, "--max-new-tokens", "2",
            "--method", "occlusion", "--method", "random", "--chunk-size", "2"]  # fmt: skip
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["prompt"] is None and doc["prompts"] == PROMPTS
    assert [a["method"] for a in doc["attributions"]] == ["occlusion", "random"] * 3
    # the second chunk holds the third prompt alone: exactly explain_generation on it
    gen = load_model(str(tiny_llama_dir), "generator")
    alone = explain_generation([PROMPTS[2]], gen, ["occlusion", "random"], max_new_tokens=2)
    for got, want in zip(doc["attributions"][4:], alone, strict=True):
        assert got["matrix"] == want.matrix and got["source_units"] == want.source_units
    # stored prompt by prompt, method by method (runs show reads them back in order)
    items = open_store().get_items(doc["run_id"], "generation")
    assert list(items) == [f"{r:06d}-{m:03d}" for r in range(3) for m in range(2)]
    assert [v["prompt"] for v in items.values()] == [p for p in PROMPTS for _ in range(2)]
    # the terminal view: each prompt once, followed by its methods
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    assert [out.count(p) >= 1 for p in PROMPTS] == [True] * 3
    assert out.index(PROMPTS[0]) < out.index(PROMPTS[1]) < out.index(PROMPTS[2])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a prompt", "--input", "p.txt"], "give a PROMPT or --input FILE"),
        ([], "give a PROMPT or --input FILE"),
        (["a prompt", "--limit", "3"], "--limit applies to --input FILE"),
        (["--input", "missing.txt"], "missing.txt"),
        (["a prompt", "--actors", "2"], "need --backend ray"),
    ],
)
def test_bad_generate_input_is_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "generate", *args, "-m", "no-such-model")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert message in err
