"""Reading the run store for the API: run lists, one run's results, and exports."""

from __future__ import annotations

import json
from typing import Any

from explainlm.errors import UserError
from explainlm.server.errors import ApiError
from explainlm.server.work import clean


def _store() -> Any:
    from explainlm.store import open_store

    return open_store()


def _record(run_id: str) -> Any:
    try:
        return _store().get_run(run_id)
    except UserError as e:
        raise ApiError(404 if "no run" in str(e) else 400, str(e)) from None


def list_runs(search: str | None, command: str | None, limit: int) -> dict[str, Any]:
    """``GET /api/runs``: newest first, each with a short preview of its first text."""
    store = _store()
    runs = []
    for rec in store.list_runs(limit=limit, command=command or None, search=search or None):
        d = rec.to_dict()
        d.pop("versions", None)
        d["preview"] = _preview(store, rec)
        runs.append(d)
    return clean({"runs": runs})


def _preview(store: Any, rec: Any) -> str | None:
    table = {"explain": "explanations", "predict": "predictions"}.get(rec.command)
    if table:
        with store.connect() as con:
            row = con.execute(
                f"SELECT text FROM {table} WHERE run_id = ? ORDER BY idx LIMIT 1", [rec.run_id]
            ).fetchone()
        return row[0] if row else None
    if rec.command == "generate":
        items = store.get_items(rec.run_id, "generation")
        first = next(iter(items.values()), None)
        return first["prompt"] if first else None
    return None


def get_run(run_id: str) -> dict[str, Any]:
    """``GET /api/runs/{id}``: the record and its results in the CLI's ``--json`` shapes."""
    rec = _record(run_id)
    store = _store()
    out: dict[str, Any] = {"run": rec.to_dict()}
    if rec.command == "explain":
        from explainlm.report.heatmap import summary

        exps = store.load_explanations(rec.run_id)
        docs = []
        for e in exps:
            d = e.to_json_doc()
            d["summary"] = summary(e)
            docs.append(d)
        out["explanations"] = docs
        if rec.summary and rec.summary.get("faithfulness"):
            out["faithfulness"] = rec.summary["faithfulness"]
    elif rec.command == "generate":
        from explainlm.report.matrix import summary as gsummary

        gens = _generations(store, rec.run_id)
        out["prompt"] = gens[0].prompt if gens else None
        out["attributions"] = [
            {**a.to_json_doc(), "summary": gsummary(a), "continuation": a.continuation}
            for a in gens
        ]
    elif rec.command == "predict":
        out["predictions"] = [
            {"text": r["text"], "label": r["label"], "probs": r["probs"]}
            for r in store.results(rec.run_id, "predictions")
        ]
    else:
        out["tables"] = store.result_tables(rec.run_id)
    return clean(out)


def _generations(store: Any, run_id: str) -> list[Any]:
    from explainlm.generation import GenerationAttribution

    return [
        GenerationAttribution.from_dict(d) for d in store.get_items(run_id, "generation").values()
    ]


def export_run(run_id: str, fmt: str) -> tuple[str, str, str]:
    """``(body, media type, file name)`` of a run exported as JSON or a self-contained HTML report.

    The HTML goes through :mod:`explainlm.report`, which escapes every piece of user text.
    """
    rec = _record(run_id)
    store = _store()
    if fmt == "json":
        body = json.dumps(
            clean({"run": rec.to_dict(), **store.result_tables(rec.run_id)}), indent=1
        )
        return body, "application/json", f"explainlm-{rec.run_id}.json"
    if fmt != "html":
        raise ApiError(400, f"unknown export format {fmt!r}; use json or html")
    meta = {"model": rec.model, "run": rec.run_id}
    if rec.command == "explain":
        from explainlm.report.heatmap import explanations_section
        from explainlm.report.html import page

        exps = store.load_explanations(rec.run_id)
        sections = [explanations_section(exps)]
        faith = (rec.summary or {}).get("faithfulness")
        if faith:
            sections.append(_faithfulness_section(faith, exps))
        body = page("explainlm explanations", sections, meta)
    elif rec.command == "generate":
        from explainlm.report.matrix import generation_report

        body = generation_report(_generations(store, rec.run_id), meta)
    elif rec.command == "predict":
        from explainlm.report.html import page, predictions_section

        preds = store.results(rec.run_id, "predictions")
        body = page("explainlm predictions", [predictions_section(rec.model or "", preds)], meta)
    else:
        raise ApiError(400, f"no HTML report for {rec.command} runs; export it as json")
    return body, "text/html; charset=utf-8", f"explainlm-{rec.run_id}.html"


def _faithfulness_section(faith: list[dict[str, Any]], exps: Any) -> str:
    from explainlm.report.html import esc

    rows = []
    for f in faith:
        i = int(f.get("index", 0))
        text = exps[i].text if i < len(exps) else ""
        rows.append(
            f"<tr><td>{esc(text)}</td><td>{esc(f.get('method'))}</td>"
            f"<td>{_num(f.get('comprehensiveness'))}</td><td>{_num(f.get('sufficiency'))}</td></tr>"
        )
    return (
        "<h2>Faithfulness (ERASER AOPC over top 1/5/10/20/50%)</h2><table><tr><th>text</th>"
        "<th>method</th><th>comprehensiveness ↑</th><th>sufficiency ↓</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _num(v: Any) -> str:
    return "–" if v is None else f"{float(v):+.3f}"
