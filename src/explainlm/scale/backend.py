"""``--backend ray``: the driver of a dataset job (the ``explainlm.backends`` entry point ``ray``).

1. The request is checked (before any model loads) and the run is recorded in the run store with
   the request's full spec and the backend options — or, with ``resume``, an unfinished run is
   reopened with its own stored settings.
2. Ray Data reads the input; the driver cuts it into the local run's chunks (shards).
3. An actor pool (one model copy per actor) computes the shards not yet indexed as done; each
   finished shard is a Parquet file of the result dataset and an ``items`` row (kind ``shard``)
   of the run store, written by the driver. Progress: one bar over the rows.
4. The run's summary lists the shards, counts and failed rows; :meth:`ClusterJobResult.load`
   merges the dataset into the service's own result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from secrets import token_hex
from typing import Any

from explainlm.errors import UserError
from explainlm.paths import home_dir
from explainlm.scale.cluster import connect, disconnect, require_ray
from explainlm.scale.result import ClusterJobResult
from explainlm.services.base import ServiceContext, ServiceRequest
from explainlm.services.dataset_jobs import (
    ITEM_KIND,
    JOBS,
    BackendOptions,
    DatasetJob,
    check_cluster_request,
)

DEFAULT_ACTORS = 2


def resumed_job(
    request: ServiceRequest, ctx: ServiceContext, options: BackendOptions
) -> tuple[ServiceRequest, BackendOptions]:
    """With ``options.resume``: the run's stored request and options (the pool's size, address
    and GPUs may be given anew); else the arguments as they are."""
    if not options.resume:
        return request, options
    if ctx.store is None:
        raise UserError("resuming a job needs the run store")
    rec = ctx.store.get_run(options.resume)
    stored = rec.params.get("backend")
    if stored is None or rec.command not in JOBS:
        raise UserError(f"run {rec.run_id} is not a dataset job run on a cluster backend")
    if rec.status == "finished":
        raise UserError(f"run {rec.run_id} is finished: nothing to resume")
    job = JOBS[rec.command]
    given = options.model_dump(exclude_unset=True, exclude={"resume", "backend"})
    merged = BackendOptions.model_validate({**stored, **given, "resume": rec.run_id})
    return job.request.from_stored(rec.params), merged  # its plan; older runs' settings


def input_fingerprint(paths: list[str | None]) -> list[list[Any]] | None:
    """Name, size and modification time of the input file(s): a resumed run checks them."""
    files: list[Path] = []
    for path in filter(None, paths):
        p = Path(path)
        files += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    if not files:
        return None
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def check_resumable(
    ctx: ServiceContext, run_id: str, n_rows: int, fingerprint: Any, meta: dict[str, Any]
) -> None:
    """The input (files, rows, and what the workers learnt: an audit's items) is unchanged."""
    assert ctx.store is not None
    params = ctx.store.get_run(run_id).params
    same_meta = params.get("job_meta", {}) == json.loads(json.dumps(meta, allow_nan=True))
    if params.get("n_rows") != n_rows or params.get("input_fingerprint") != fingerprint:
        raise UserError(
            f"cannot resume {run_id}: its input changed ({params.get('n_rows')} rows then, "
            f"{n_rows} now, or the file was modified)"
        )
    if not same_meta:
        raise UserError(f"cannot resume {run_id}: its data or models changed since it started")


def run(request: ServiceRequest, ctx: ServiceContext, options: BackendOptions) -> ClusterJobResult:
    """Run the dataset job ``request`` on a Ray cluster (see the module's docstring)."""
    require_ray()
    request, options = resumed_job(request, ctx, options)
    job = check_cluster_request(request)
    joined = connect(options.address)
    try:
        return run_job(job, request, ctx, options)
    finally:
        disconnect(joined)


def run_job(
    job: DatasetJob, request: ServiceRequest, ctx: ServiceContext, options: BackendOptions
) -> ClusterJobResult:
    """Read the input (before any model loads), start the pool, record the run, run the shards."""
    from explainlm.scale.inputs import index_shards, open_input, text_shards
    from explainlm.scale.pool import ActorPool, make_actor

    ds, n_rows = open_input(request) if job.inputs == "texts" else (None, 0)
    gpus = options.gpus_per_actor or 0.0
    spec = request.spec()
    pool = ActorPool(
        lambda: make_actor(job.command, spec, options.cpus_per_actor, gpus),
        options.actors or DEFAULT_ACTORS,
    )  # the actors load the model while the run is being recorded
    try:
        meta: dict[str, Any] = {}
        if job.inputs == "examples":  # the workers load the dataset: ask one how long it is
            meta = describe(pool)
            n_rows = int(meta["n_rows"])
        fingerprint = input_fingerprint(job.input_paths(request))
        if options.resume:
            check_resumable(ctx, options.resume, n_rows, fingerprint, meta)
        extra = {
            "backend": options.spec(),
            "n_rows": n_rows,
            "shard_rows": job.shard_rows(request),
            "input_fingerprint": fingerprint,
            "job_meta": meta,
        }
        model = getattr(request, "model", None)
        with ctx.recorded_run(request, model=model, resume=options.resume, extra=extra) as run:
            pin_actors(job, ctx, pool, spec, run.run_id)
            output = options.output or str(home_dir() / "datasets" / run.run_id)
            result = ClusterJobResult(run.run_id, job.command, request, output, n_rows, {})
            result.meta = meta
            rows = job.shard_rows(request)
            sizes = meta.get("shard_sizes")
            units = text_shards(ds, rows) if ds is not None else index_shards(n_rows, rows, sizes)
            try:
                run_pool(job, ctx, options, pool, units, result)
                if job.finish is not None and not result.failed_rows:  # e.g. an audit's statistics
                    result.extra = job.finish(request, ctx.store, run.run_id, result.load())
            finally:
                run.summary = result.summary()
        return result
    finally:
        pool.shutdown()


def pin_actors(
    job: DatasetJob, ctx: ServiceContext, pool: Any, spec: dict[str, Any], run_id: str
) -> None:
    """Every actor computes in one precision plan: the run's own (a resume), else the one the
    first actor resolves on its model (``auto``: its machine's measurement, made once), recorded
    with the run. An actor that replaces a lost one gets it with ``spec``."""
    if job.plan_model is None:
        return
    import ray

    from explainlm.services.precision_plan import record_plan

    (plan,) = _loaded(lambda: [pool.actors[0].precision_plan.remote()])
    ray.get([a.pin.remote(plan) for a in pool.actors])
    if spec.get("precision_plan") is None and ctx.store is not None:
        record_plan(ctx.store, run_id, plan)
    spec["precision_plan"] = plan


def done_shards(ctx: ServiceContext, run_id: str | None, output: str) -> dict[str, dict[str, Any]]:
    """The shards a previous call finished (indexed as done, with their file present)."""
    if ctx.store is None or run_id is None:
        return {}
    items = ctx.store.get_items(run_id, ITEM_KIND)
    return {
        k: v
        for k, v in items.items()
        if v.get("status") == "done" and (Path(output) / v["file"]).is_file()
    }


def run_pool(
    job: DatasetJob,
    ctx: ServiceContext,
    options: BackendOptions,
    pool: Any,
    units: Iterator[tuple[int, int, list[Any]]],
    result: ClusterJobResult,
) -> None:
    """Compute every shard not done yet on the pool; fill ``result`` as shards finish."""
    from explainlm.scale.outputs import shard_key, write_shard
    from explainlm.scale.pool import Shard, run_shards

    started, session = time.monotonic(), token_hex(4)
    result.shards = done_shards(ctx, result.run_id, result.output)
    result.resumed = sorted(result.shards)
    todo_rows = result.rows - sum(s["rows"] for s in result.shards.values())
    store = ctx.store if result.run_id is not None else None

    def index(finished: list[tuple[Shard, dict[str, Any]]]) -> None:
        rows, items = {}, {}
        for shard, row in finished:
            key = shard_key(shard.k)
            items.update(row.pop("items", None) or {})
            rows[key] = result.shards[key] = {**row, "session": session}
            if row["status"] == "done":
                result.computed.append(key)
        if store is not None:
            if items and job.item_kind:  # as the local run stores them (its --resume reads them)
                store.put_items(str(result.run_id), job.item_kind, items)
            store.put_items(str(result.run_id), ITEM_KIND, rows)
        progress.advance(sum(len(shard.texts) for shard, _ in finished))

    def failed(shard: Shard, e: BaseException) -> None:
        message = f"{type(e).__name__}: {e}".splitlines()[0]
        errors = dict.fromkeys(range(len(shard.texts)), message)
        name = write_shard(result.output, shard.k, shard.start, [], errors, job.columns)
        failed_rows = [{"row": shard.start + i, "error": message} for i in errors]
        row = {"shard": shard.k, "start": shard.start, "rows": len(shard.texts), "file": name}
        index([(shard, {**row, "status": "failed", "failed_rows": failed_rows, "error": message})])

    Path(result.output).mkdir(parents=True, exist_ok=True)
    resumed = f" ({len(result.resumed)} shards resumed)" if result.resumed else ""
    with ctx.progress.stage_of(f"{job.command} on ray{resumed}", todo_rows) as progress:
        result.actors = start_actors(pool)
        run_shards(
            pool,
            (Shard(k, start, u) for k, start, u in units if shard_key(k) not in result.shards),
            result.output,
            on_done=lambda done: index([(s, {**report, "status": "done"}) for s, report in done]),
            on_failed=failed,
            check=progress.check,
            max_retries=options.max_retries,
            default_budget=getattr(result.request, "max_batch_tokens", None),
        )
    result.seconds = time.monotonic() - started


def describe(pool: Any) -> dict[str, Any]:
    """What the first actor learnt while loading (a benchmark's examples: their number, …)."""
    return dict(_loaded(lambda: [pool.actors[0].describe.remote()])[0])


def start_actors(pool: Any) -> list[dict[str, Any]]:
    """Wait until every actor has loaded its model; a load that fails is the job's error."""
    return list(_loaded(lambda: [a.info.remote() for a in pool.actors]))


def _loaded(calls: Any) -> list[Any]:
    import ray
    from ray.exceptions import RayActorError

    try:
        return list(ray.get(calls()))
    except RayActorError as e:
        cause = getattr(e, "cause", None) or e
        if isinstance(cause, UserError):
            raise cause from None
        raise UserError(
            f"the actors could not load the model: {str(cause).splitlines()[-1]}"
        ) from None


__all__ = ["DEFAULT_ACTORS", "ClusterJobResult", "run"]
