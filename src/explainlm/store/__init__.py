"""The run store: every command that computes something records a run in an embedded DuckDB file."""

from explainlm.store.health import no_store, open_store
from explainlm.store.recording import RunBusy
from explainlm.store.runs import (
    RunContext,
    RunRecord,
    RunStore,
    StoreDamaged,
    default_store_path,
)

__all__ = [
    "RunBusy",
    "RunContext",
    "RunRecord",
    "RunStore",
    "StoreDamaged",
    "default_store_path",
    "no_store",
    "open_store",
]
