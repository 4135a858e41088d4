"""Write the long prompt of issue 19's occlusion case (RESULTS.md, "Long inputs"): the first ERASER
movie-review documents joined and cut to 1,490 SmolLM2 tokens (1,517 with the zero-shot template).

    python benchmarks/long_input.py /tmp/long1517.txt
    explainlm explain -i /tmp/long1517.txt --method occlusion --granularity sentence
"""

from __future__ import annotations

import sys
from pathlib import Path

from transformers import AutoTokenizer

from explainlm.models.sources import resolve_source
from explainlm.paths import data_dir

TOKENS = 1490


def main(out: str) -> None:
    tok = AutoTokenizer.from_pretrained(resolve_source("smollm2-135m").path)
    docs = sorted((data_dir() / "eraser-movies" / "docs").glob("*"))
    text = ""
    for doc in docs:
        text = (text + " " + doc.read_text(encoding="utf-8").replace("\n", " ").strip()).strip()
        if len(tok(text)["input_ids"]) > TOKENS - 40:
            break
    words = text.split()
    while len(tok(" ".join(words))["input_ids"]) > TOKENS:
        words = words[:-1]
    Path(out).write_text(" ".join(words) + "\n", encoding="utf-8")
    print(f"{out}: {len(words)} words, {len(tok(' '.join(words))['input_ids'])} tokens")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "long1517.txt")
