"""The result tables of the run store: predictions, explanations, per-item results, and exports.

:class:`ResultTables` is the half of :class:`~explainlm.store.RunStore` that reads and writes the
results of a run (the other half records the runs themselves).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from explainlm.errors import UserError
from explainlm.results import json_safe
from explainlm.store.schema import RESULT_TABLES

EXPORT_FORMATS = ("json", "parquet", "csv")


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class ResultTables:
    """Result rows of runs; needs ``connect()``, ``transaction()`` and ``get_run()`` (RunStore)."""

    def connect(self) -> Any:  # pragma: no cover - provided by RunStore
        raise NotImplementedError

    def transaction(self) -> Any:  # pragma: no cover - provided by RunStore
        raise NotImplementedError

    def get_run(self, run_id: str) -> Any:  # pragma: no cover - provided by RunStore
        raise NotImplementedError

    def add_predictions(
        self, run_id: str, predictions: Iterable[Mapping[str, Any]], start: int = 0
    ) -> None:
        rows = [
            [
                run_id,
                start + i,
                p["text"],
                p["label"],
                _json(p["probs"]),
                _json(p.get("warnings") or []),
            ]
            for i, p in enumerate(predictions)
        ]
        with self.transaction() as con:
            con.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?)", rows)

    def add_explanations(self, run_id: str, explanations: Iterable[Any], start: int = 0) -> None:
        """Store explanations (:class:`~explainlm.explanation.Explanation` objects) in one transaction."""
        rows = []
        for i, e in enumerate(explanations):
            d = e.to_dict()
            rows.append(
                [
                    run_id,
                    start + i,
                    e.text,
                    e.method,
                    e.target,
                    e.label,
                    e.predicted,
                    _json(e.probs),
                    e.granularity,
                    _json(d["units"]),
                    _json(d["scores"]),
                    e.delta,
                    e.seconds,
                    _json(d),
                ]
            )
        with self.transaction() as con:
            con.executemany(
                "INSERT INTO explanations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def drop_explanations_from(self, run_id: str, first_idx: int) -> None:
        """Delete a run's explanation rows from ``first_idx`` on (a partly stored text, resumed)."""
        with self.transaction() as con:
            con.execute(
                "DELETE FROM explanations WHERE run_id = ? AND idx >= ?", [run_id, first_idx]
            )

    def load_explanations(self, run_id: str) -> Any:
        """The explanations of a run as an :class:`~explainlm.explanation.ExplanationSet`."""
        from explainlm.explanation import Explanation, ExplanationSet

        rows = self.results(self.get_run(run_id).run_id, "explanations")
        return ExplanationSet([Explanation.from_dict(r["payload"]) for r in rows], run_id=run_id)

    def put_items(self, run_id: str, kind: str, items: Mapping[str, Any]) -> None:
        """Store per-item results of a dataset job in one transaction (``key -> payload``)."""
        now = _now()
        with self.transaction() as con:
            con.executemany(
                "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?)",
                [[run_id, kind, k, _json(v), now] for k, v in items.items()],
            )

    def get_items(self, run_id: str, kind: str) -> dict[str, Any]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT key, payload FROM items WHERE run_id = ? AND kind = ? ORDER BY key",
                [run_id, kind],
            ).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def results(self, run_id: str, table: str = "predictions") -> list[dict[str, Any]]:
        """Rows of one result table for a run, JSON columns decoded."""
        if table not in RESULT_TABLES:
            raise UserError(f"unknown result table {table!r}; known: {', '.join(RESULT_TABLES)}")
        with self.connect() as con:
            cur = con.execute(
                f"SELECT * FROM {table} WHERE run_id = ? ORDER BY {RESULT_TABLES[table]}", [run_id]
            )
            cols = [d[0] for d in cur.description]
            types = [str(d[1]) for d in cur.description]
            out = []
            for row in cur.fetchall():
                rec = {}
                for c, t, v in zip(cols, types, row, strict=True):
                    rec[c] = json.loads(v) if t == "JSON" and v is not None else v
                out.append(rec)
        return out

    def first_row(self, run_id: str, table: str) -> dict[str, Any] | None:
        """The first row of a run's result table (a run's preview), or None."""
        if table not in RESULT_TABLES:
            raise UserError(f"unknown result table {table!r}; known: {', '.join(RESULT_TABLES)}")
        with self.connect() as con:
            cur = con.execute(
                f"SELECT * FROM {table} WHERE run_id = ? ORDER BY {RESULT_TABLES[table]} LIMIT 1",
                [run_id],
            )
            cols = [d[0] for d in cur.description]
            row = cur.fetchone()
        return dict(zip(cols, row, strict=True)) if row else None

    def result_tables(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        return {t: rows for t in RESULT_TABLES if (rows := self.results(run_id, t))}

    def export(self, run_id: str, fmt: str, output: str | os.PathLike[str]) -> list[Path]:
        """Export a run: JSON (run record and all results), or Parquet/CSV (one file per result table)."""
        import pandas as pd

        if fmt not in EXPORT_FORMATS:
            raise UserError(
                f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}"
            )
        rec = self.get_run(run_id)
        tables = self.result_tables(rec.run_id)
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "json":
            doc = json_safe({"run": rec.to_dict(), **tables})
            out.write_text(json.dumps(doc, indent=2), encoding="utf-8")
            return [out]
        if not tables:
            tables = {"runs": [rec.to_dict()]}
        written = []
        for name, rows in tables.items():
            target = out if len(tables) == 1 else out.with_name(f"{out.stem}.{name}{out.suffix}")
            frame = pd.DataFrame(
                [
                    {k: _json(v) if isinstance(v, (dict, list)) else v for k, v in r.items()}
                    for r in rows
                ]
            )
            if fmt == "parquet":
                frame.to_parquet(target, index=False)
            else:
                frame.to_csv(target, index=False)
            written.append(target)
        return written
