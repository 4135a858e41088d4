"""Scale-out on Ray: dataset jobs (predict, explain, benchmark) sharded over an actor pool.

A front-end like the CLI and the web app: it builds nothing of its own but runs the services'
per-shard code (:mod:`explainlm.services.dataset_jobs`) in Ray actors, each loading the model once.
Ray Data reads the input (Parquet, CSV, TSV, JSONL, TXT) and cuts it into the local run's chunks;
every finished shard is one Parquet file of the result dataset and one row of the run store's
shard index, so a killed job resumes where it stopped and the merged result is the local one.
See ``docs/scale.md``. Needs the ``ray`` extra: ``pip install 'explainlm[ray]'``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run"]


def run(request: Any, ctx: Any, options: Any) -> Any:
    """:func:`explainlm.scale.backend.run` (imported on use: Ray loads only when needed)."""
    from explainlm.scale.backend import run as run_on_ray

    return run_on_ray(request, ctx, options)
