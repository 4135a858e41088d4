"""The driver's scheduling loop: shards to an actor pool, with retries and replaced actors.

Each actor holds at most ``per_actor`` shards at once (one running, one queued, so an actor never
waits for the driver). A shard whose actor died (killed, crashed, or stopped by Ray's memory
monitor) goes back to the queue on a fresh actor — after an out-of-memory kill with half the token
budget — until it has failed ``max_retries + 1`` times; then it is recorded as failed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import OutOfMemoryError, RayActorError, RayTaskError, WorkerCrashedError

from explainlm.scale.worker import MIN_BUDGET, ShardWorker

LOST = (RayActorError, WorkerCrashedError, OutOfMemoryError)


@dataclass
class Shard:
    k: int
    start: int
    texts: list[Any]  # the shard's texts, or its example indices
    lost: int = 0  # times its actor died under it
    budget: int | None = None  # lowered token budget after an out-of-memory kill


def make_actor(command: str, spec: dict[str, Any], cpus: float, gpus: float) -> Any:
    """A :class:`ShardWorker` actor (it loads the model in its constructor)."""
    remote = ray.remote(ShardWorker).options(num_cpus=cpus, num_gpus=gpus, max_restarts=0)
    return remote.remote(command, spec, max(1, int(cpus)))


class ActorPool:
    """``n`` actors made by ``factory``; a dead one is replaced by a fresh one."""

    def __init__(self, factory: Callable[[], Any], n: int) -> None:
        self.factory = factory
        self.actors = [factory() for _ in range(n)]
        self.replaced = 0

    def replace(self, slot: int, dead: Any) -> None:
        if self.actors[slot] is dead:  # its other queued shards fail too: replace it once
            ray.kill(dead, no_restart=True)
            self.actors[slot] = self.factory()
            self.replaced += 1

    def shutdown(self) -> None:
        for a in self.actors:
            ray.kill(a, no_restart=True)


def run_shards(
    pool: ActorPool,
    todo: Iterator[Shard],
    output: str,
    *,
    on_done: Callable[[list[tuple[Shard, dict[str, Any]]]], None],
    on_failed: Callable[[Shard, BaseException], None],
    check: Callable[[], None],
    max_retries: int,
    default_budget: int | None,
    per_actor: int = 2,
) -> None:
    """Run every shard of ``todo`` on the pool; ``check()`` is the cancellation point.

    ``on_done`` gets the shards finished since its last call, together (one store write)."""
    pending: dict[Any, tuple[Shard, int, Any]] = {}
    load = [0] * len(pool.actors)
    retry: deque[Shard] = deque()
    exhausted = False

    def submit() -> None:
        nonlocal exhausted
        for slot in range(len(pool.actors)):
            while load[slot] < per_actor:
                shard = retry.popleft() if retry else None
                if shard is None and not exhausted:
                    shard = next(todo, None)
                    exhausted = shard is None
                if shard is None:
                    return
                actor = pool.actors[slot]
                ref = actor.run_shard.remote(
                    shard.k, shard.start, shard.texts, shard.budget, max_retries, output
                )
                pending[ref] = (shard, slot, actor)
                load[slot] += 1

    while True:
        submit()
        if not pending:
            return
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        if ready:  # and every other shard already done: their index rows go in one write
            rest = [r for r in pending if r not in ready]
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0] if rest else []
        check()
        done: list[tuple[Shard, dict[str, Any]]] = []
        for ref in ready:
            shard, slot, actor = pending.pop(ref)
            load[slot] -= 1
            try:
                done.append((shard, ray.get(ref)))
            except (*LOST, RayTaskError) as e:  # a task error: its file could not be written
                if isinstance(e, LOST):
                    pool.replace(slot, actor)
                shard.lost += 1
                if isinstance(e, OutOfMemoryError) and default_budget:
                    shard.budget = max(MIN_BUDGET, (shard.budget or default_budget or 0) // 2)
                if shard.lost > max_retries:
                    on_failed(shard, e)
                else:
                    retry.append(shard)
        if done:
            on_done(done)
