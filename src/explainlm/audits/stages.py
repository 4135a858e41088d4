"""An audit as a plan: its models, its per-item model work in stages, its statistics.

An :class:`AuditPlan` is built from the request and the data ``prepare`` read (no model) and says

* ``load(models)``: the models the audit needs, as tasks (a classifier, a scorer, a generator …);
* ``facts(loaded)``: what the statistics need to know of those models (their labels, the label
  compared, the scorer's description) — JSON, checked here (a label the model lacks is a
  one-line error);
* ``stages(facts)``: the per-item model work, each :class:`Stage` a list of item keys computed
  chunk by chunk (``compute(loaded, keys) → {key: payload}``), the payloads JSON;
* ``summarise(facts, payloads)``: the audit document from every stage's payloads — statistics
  only (bootstrap CIs, tests, group metrics), no model.

Locally (:func:`explainlm.audits.pipeline.run_plan`) each stage's chunks are cached in the run
store as they finish (``resume``); on a cluster (``--backend ray``) each chunk is one shard
computed by an actor, and the driver summarises the merged payloads — the same chunks and the same
statistics, hence the same document. The plans of the audit kinds: :mod:`.plans`, :mod:`.plans_lm`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from explainlm.errors import UserError

Payloads = Mapping[str, Mapping[str, Any]]  # stage id -> item key -> payload


@dataclass
class Stage:
    """Per-item model work: ``keys`` computed ``chunk_size`` at a time (``None``: all in one call,
    when the audit defines the computation over the whole set), stored under ``prefix + key``."""

    id: str
    keys: list[str]
    compute: Callable[[Any, list[str]], Mapping[str, Any]]
    chunk_size: int | None = 64
    prefix: str = ""
    label: str | None = None  # the progress stage (default: the id)

    def chunks(self) -> list[list[str]]:
        size = self.chunk_size or max(1, len(self.keys))
        return [self.keys[s : s + size] for s in range(0, len(self.keys), size)]


@dataclass
class AuditPlan:
    load: Callable[[Any], dict[str, Any]]
    facts: Callable[[dict[str, Any]], dict[str, Any]]
    stages: Callable[[dict[str, Any]], list[Stage]]
    summarise: Callable[[dict[str, Any], Payloads], dict[str, Any]]


def label_for(labels: Sequence[str], label: str | None) -> str:
    """The label whose probability is compared: ``label``, else positive, else the second."""
    if label is not None:
        if label not in labels:
            raise UserError(f"label {label!r} is not a label of the model ({', '.join(labels)})")
        return label
    if "positive" in labels:
        return "positive"
    if len(labels) == 2:
        return labels[1]
    raise UserError(f"give --label: which label's probability to compare ({', '.join(labels)})")


def model_labels(loaded: dict[str, Any], key: str = "classifier") -> list[str]:
    return [str(x) for x in loaded[key].labels]
