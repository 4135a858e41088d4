"""Building blocks of self-contained HTML reports. Every piece of user text goes through ``esc``.

>>> "<script>" in page("t", [predictions_section("m", [{"text": "<script>", "label": "x", "probs": {"x": 1.0}}])])
False
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d1d1f;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border-bottom:1px solid #eee;
padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f6f6f8}
.bar{display:inline-block;height:.8rem;background:#4f7cff;border-radius:2px;vertical-align:middle}
.muted{color:#6e6e73;font-size:.9rem}.label{font-weight:600}
"""


def esc(value: Any) -> str:
    """HTML-escape any value (quotes too)."""
    return html.escape(str(value), quote=True)


def predictions_section(model: str, predictions: Sequence[Mapping[str, Any]]) -> str:
    """A table of predictions with a probability bar per label."""
    rows = []
    for p in predictions:
        probs = "".join(
            f'<div>{esc(lab)} <span class="bar" style="width:{100 * float(v):.0f}px"></span> '
            f"{float(v):.3f}</div>"
            for lab, v in sorted(p["probs"].items(), key=lambda kv: -kv[1])
        )
        rows.append(
            f'<tr><td>{esc(p["text"])}</td><td class="label">{esc(p["label"])}</td><td>{probs}</td></tr>'
        )
    return (
        f"<h2>Predictions of {esc(model)}</h2><table><tr><th>text</th><th>label</th>"
        f"<th>probabilities</th></tr>{''.join(rows)}</table>"
    )


def page(title: str, sections: Sequence[str], meta: Mapping[str, Any] | None = None) -> str:
    """A complete HTML document with inline CSS."""
    info = "".join(f"<div>{esc(k)}: {esc(v)}</div>" for k, v in (meta or {}).items())
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>"
        f"<div class='muted'>explainlm report · {stamp}{info}</div>{''.join(sections)}</body></html>"
    )


def write_path(path: str | os.PathLike[str], document: str) -> Path:
    """Write an HTML document and return its absolute path."""
    out = Path(path).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document, encoding="utf-8")
    return out


def write_report(
    path: str | os.PathLike[str],
    title: str,
    sections: Sequence[str],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a self-contained report and return its absolute path."""
    return write_path(path, page(title, sections, meta))
