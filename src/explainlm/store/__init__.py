"""The run store: every command that computes something records a run in an embedded DuckDB file."""

from explainlm.store.runs import RunContext, RunRecord, RunStore, default_store_path, open_store

__all__ = ["RunContext", "RunRecord", "RunStore", "default_store_path", "open_store"]
