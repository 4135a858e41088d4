"""One save/load contract for every global result: JSON (reloadable), Parquet, HTML, PNG, SVG."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from explainlm.errors import UserError

S = TypeVar("S", bound="SavedResult")
SUFFIXES = ".json, .parquet, .html, .png or .svg"


def clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, numpy numbers become Python numbers."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    return obj


class SavedResult:
    """Subclasses set ``format`` and implement the four views; ``save``/``load`` come from here."""

    format: ClassVar[str] = ""
    run_id: str | None

    def to_json_doc(self) -> dict[str, Any]:
        """The compact document: the CLI's ``--json`` output and the web API's response."""
        raise NotImplementedError

    def full_doc(self) -> dict[str, Any]:
        """Everything needed to reload the result (what ``.json`` files hold)."""
        return self.to_json_doc()

    @classmethod
    def from_json_doc(cls: type[S], doc: dict[str, Any]) -> S:
        raise NotImplementedError

    def to_pandas(self) -> Any:
        raise NotImplementedError

    def html(self) -> str:
        """A complete, self-contained HTML report."""
        raise NotImplementedError

    def figure(self) -> Any:
        """The main matplotlib figure."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``.json`` (reloadable with :meth:`load`), ``.parquet``, ``.html``, ``.png``, ``.svg``."""
        out = Path(path)
        suffix = out.suffix.lower()
        if suffix not in (".json", ".parquet", ".html", ".htm", ".png", ".svg"):
            raise UserError(f"unknown file type {out.suffix!r}; use {SUFFIXES}")
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".json":
            doc = {"format": self.format, **clean(self.full_doc())}
            out.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
        elif suffix == ".parquet":
            self.to_pandas().to_parquet(out, index=False)
        elif suffix in (".html", ".htm"):
            out.write_text(self.html(), encoding="utf-8")
        else:
            from explainlm.behaviour.plots import save_figure

            save_figure(self.figure(), out)
        return out

    @classmethod
    def load(cls: type[S], path: str | os.PathLike[str]) -> S:
        """Reload a result saved as JSON."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != cls.format:
                raise KeyError("format")
            return cls.from_json_doc(doc)
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserError(f"{p}: not an explainlm {cls.format} file ({e})") from None

    def _repr_html_(self) -> str:
        return self.html()
