"""What a Ray job returns: its shard index and the way to its merged result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from explainlm.scale.outputs import read_records
from explainlm.services.base import json_safe
from explainlm.services.dataset_jobs import JOBS


@dataclass
class ClusterJobResult:
    """A finished dataset job: the run, its result dataset and its shard index.

    :meth:`load` merges the result dataset into the service's own result (an ``ExplainResult``,
    a ``PredictResult``): the local backend's result for the same request, in the same order.
    """

    run_id: str | None
    command: str
    request: Any
    output: str
    rows: int
    shards: dict[str, dict[str, Any]]  # key -> index row (status, rows, file, attempts, …)
    computed: list[str] = field(default_factory=list)  # shards computed by this call
    resumed: list[str] = field(default_factory=list)  # shards finished by an earlier call
    actors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)  # what the workers learnt (benchmark)
    extra: dict[str, Any] = field(default_factory=dict)  # the job's own summary (an audit's)
    merged: Any = field(default=None, repr=False)  # load()'s result, once merged

    @property
    def failed_rows(self) -> list[dict[str, Any]]:
        return [f for s in self.shards.values() for f in s.get("failed_rows", [])]

    @property
    def files(self) -> list[str]:
        return [self.shards[k]["file"] for k in sorted(self.shards)]

    def load(self) -> Any:
        """The merged result, as the local backend returns it (merged once)."""
        if self.merged is None:
            records = read_records(self.output, self.files)
            self.merged = JOBS[self.command].merge(self.request, self.run_id, records, self.meta)
        return self.merged

    def summary(self) -> dict[str, Any]:
        """What the run store keeps as the run's summary (and the ``--json`` ``dataset`` part)."""
        failed = self.failed_rows
        return json_safe(
            {
                "backend": "ray",
                "output": self.output,
                "rows": self.rows,
                "shards": len(self.shards),
                "computed_shards": len(self.computed),
                "resumed_shards": len(self.resumed),
                "failed_shards": sorted(k for k, s in self.shards.items() if s["status"] != "done"),
                "n_failed_rows": len(failed),
                "failed_rows": failed[:100],
                "actors": self.actors,
                "seconds": round(self.seconds, 3),
                **self.extra,
            }
        )

    def to_json_doc(self) -> dict[str, Any]:
        """``{"run_id", "command", "dataset": summary}``; the CLI adds the merged document."""
        return {"run_id": self.run_id, "command": self.command, "dataset": self.summary()}
