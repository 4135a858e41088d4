"""Fine-tune an encoder (by default the built-in MiniLM) into a sequence classifier.

The trained directory is self-describing: weights (safetensors), tokenizer, and ``explainlm.json``
with the labels, the original label values, the parameters, the per-epoch dev metrics and the best
epoch. It loads with :func:`explainlm.models.load_model`.

>>> from explainlm.training import train_classifier
>>> result = train_classifier(                                          # doctest: +SKIP
...     "../shared/data/sst2/train.tsv", "../shared/data/sst2/dev.tsv",
...     output_dir="models/minilm-sst2", text_column="sentence",
...     label_names=["negative", "positive"], epochs=1, max_length=64)
>>> result.dev_metrics["accuracy"]                                      # doctest: +SKIP
0.9
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explainlm.errors import DataFormatError, UserError
from explainlm.progress import Progress, as_progress
from explainlm.training.data import read_source
from explainlm.training.loop import FitResult, build_model
from explainlm.training.loop import fit as fit_model
from explainlm.training.output import (
    package_version,
    prepare_output,
    save_model_dir,
)

LogFn = Callable[[str], None]


@dataclass
class TrainResult:
    """What :func:`train_classifier` produced; ``history`` holds one dict of metrics per epoch."""

    output_dir: Path
    labels: list[str]
    history: list[dict[str, Any]]
    best_epoch: int
    dev_metrics: dict[str, Any] | None
    train_seconds: float
    device: str
    label_values: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["output_dir"] = str(self.output_dir)
        return d


# ------------------------------------------------------------------------------ helpers
def _source_name(source: str | os.PathLike[str]) -> str:
    """An absolute path for files, the ``NAME:SPLIT`` text for built-in datasets."""
    p = Path(source)
    return str(p.resolve()) if p.exists() else str(source)


def _sorted_values(values: Sequence[str]) -> list[str]:
    """Unique values, sorted numerically when they are all integers (so "2" < "10")."""
    unique = set(values)
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _resolve_device(device: str | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise UserError(f"unknown device {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is available")
    return dev


def _check_params(p: Mapping[str, Any]) -> None:
    epochs, batch_size, patience = p["epochs"], p["batch_size"], p["patience"]
    learning_rate, weight_decay, warmup_ratio = (
        p["learning_rate"],
        p["weight_decay"],
        p["warmup_ratio"],
    )
    max_length, limit, dev_limit = p["max_length"], p["limit"], p["dev_limit"]
    checks = [
        (epochs >= 1, f"epochs must be at least 1 (got {epochs})"),
        (batch_size >= 1, f"batch size must be at least 1 (got {batch_size})"),
        (learning_rate > 0, f"learning rate must be positive (got {learning_rate})"),
        (weight_decay >= 0, f"weight decay must not be negative (got {weight_decay})"),
        (0 <= warmup_ratio < 1, f"warmup ratio must be in [0, 1) (got {warmup_ratio})"),
        (max_length >= 8, f"max length must be at least 8 tokens (got {max_length})"),
        (patience >= 1, f"patience must be at least 1 epoch (got {patience})"),
        (limit is None or limit >= 1, f"limit must be at least 1 row (got {limit})"),
        (
            dev_limit is None or dev_limit >= 1,
            f"dev limit must be at least 1 row (got {dev_limit})",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    if p.get("augment"):
        from explainlm.training.augment import parse_augment

        parse_augment(p["augment"])


def _label_ids(
    values: Sequence[str],
    lines: Sequence[int],
    value_to_id: Mapping[str, int],
    path: Path,
    known: Sequence[str],
) -> list[int]:
    ids = []
    for value, line in zip(values, lines, strict=True):
        if value not in value_to_id:
            raise DataFormatError(
                path,
                line,
                f"label {value!r} was not seen in the training file "
                f"(training labels: {', '.join(known)})",
            )
        ids.append(value_to_id[value])
    return ids


# ------------------------------------------------------------------------------ data
@dataclass
class _Data:
    """Encoded-ready training data: texts and label ids (and the dev set, when given)."""

    names: list[str]
    values: list[str]
    train_texts: list[str]
    train_y: list[int]
    dev_texts: list[str] | None
    dev_y: list[int]
    augmented: int = 0


def _label_names(values: list[str], label_names: Sequence[str] | None, path: Path) -> list[str]:
    if len(values) < 2:
        raise UserError(
            f"{path}: the training data has only one label ({values[0]!r}); "
            "a classifier needs at least two"
        )
    if label_names is None:
        return [str(v) for v in values]
    names = [str(n).strip() for n in label_names]
    if len(names) != len(values):
        raise UserError(
            f"{len(names)} label names ({', '.join(names)}) given for {len(values)} labels in "
            f"{path} ({', '.join(values)}); give one name per label, in sorted order"
        )
    if len(set(names)) != len(names) or not all(names):
        raise UserError(f"label names must be distinct and non-empty (got {', '.join(names)})")
    return names


def _load_data(
    train_path: str | os.PathLike[str],
    dev_path: str | os.PathLike[str] | None,
    p: Mapping[str, Any],
    label_names: Sequence[str] | None,
    augment: str | None,
) -> _Data:
    cols = {"text_column": p["text_column"], "label_column": p["label_column"]}
    train = read_source(train_path, limit=p["limit"], **cols)
    values = _sorted_values(train.labels)
    names = _label_names(values, label_names, train.path)
    value_to_id = {v: i for i, v in enumerate(values)}
    data = _Data(
        names,
        values,
        list(train.texts),
        _label_ids(train.labels, train.lines, value_to_id, train.path, values),
        None,
        [],
    )
    if dev_path is not None:
        dev = read_source(dev_path, limit=p["dev_limit"], **cols)
        data.dev_texts = list(dev.texts)
        data.dev_y = _label_ids(dev.labels, dev.lines, value_to_id, dev.path, values)
    if augment:
        from explainlm.training.augment import augment_texts

        extra = augment_texts(data.train_texts, augment)
        data.train_texts += [t for _, t in extra]
        data.train_y += [data.train_y[i] for i, _ in extra]
        data.augmented = len(extra)
    return data


# ------------------------------------------------------------------------------ training
def train_classifier(
    train_path: str | os.PathLike[str],
    dev_path: str | os.PathLike[str] | None = None,
    *,
    output_dir: str | os.PathLike[str],
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    base_model: str = "minilm-l6",
    epochs: int = 3,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.06,
    max_length: int = 128,
    seed: int = 0,
    patience: int = 1,
    limit: int | None = None,
    dev_limit: int | None = None,
    augment: str | None = None,
    device: str | None = None,
    progress: bool | Progress = True,
    log: LogFn = print,
) -> TrainResult:
    """Fine-tune ``base_model`` on a labelled file (TSV/CSV/JSONL, or a dataset ``NAME:SPLIT``) and save it.

    Labels are the sorted unique values of the training file's ``label_column``; ``label_names``
    renames them in that order (``["negative", "positive"]`` for SST-2's ``0``/``1``). With a dev
    file, every epoch is evaluated on it, training stops after ``patience`` epochs without a better
    dev accuracy, and the best epoch's weights are saved. Without one, the last epoch is saved.
    ``augment="swap:gender"`` adds, for every training text with a gendered term, a copy with the
    terms swapped and the same label (counterfactual data augmentation; ``swap:race`` or
    ``swap:PAIRS.csv`` work too). ``progress``: a :class:`~explainlm.progress.Progress`, or a bool.

    >>> r = train_classifier("train.tsv", "dev.tsv", output_dir="out", text_column="sentence",
    ...                      label_names=["negative", "positive"], epochs=2)   # doctest: +SKIP
    >>> r.best_epoch, r.labels                                               # doctest: +SKIP
    (2, ['negative', 'positive'])
    """
    params: dict[str, Any] = {
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
        "weight_decay": weight_decay, "warmup_ratio": warmup_ratio, "max_length": max_length,
        "seed": seed, "patience": patience, "limit": limit, "dev_limit": dev_limit,
        "augment": augment,
    }  # fmt: skip
    _check_params(params)
    out_dir = Path(output_dir)
    prepare_output(out_dir)
    cols = {"text_column": text_column, "label_column": label_column}
    data = _load_data(train_path, dev_path, {**params, **cols}, label_names, augment)
    dev_t = _resolve_device(device)
    _seed_everything(seed)
    model, tokenizer = build_model(base_model, data.names, dev_t)
    log(
        f"training {base_model} on {len(data.train_texts)} rows ({len(data.names)} labels: "
        f"{', '.join(data.names)})"
        + (f", {data.augmented} of them added by {augment}" if augment else "")
        + (f", dev {len(data.dev_texts)} rows" if data.dev_texts is not None else ", no dev file")
        + f"; device {dev_t}"
    )
    fit = fit_model(model, tokenizer, data, {**params, **cols}, dev_t, as_progress(progress), log)
    return _save(model, tokenizer, data, fit, params, out_dir, str(dev_t), log,
                 {"base_model": str(base_model), "train_file": _source_name(train_path),
                  "dev_file": _source_name(dev_path) if dev_path is not None else None, **cols})  # fmt: skip


def _save(
    model: Any,
    tokenizer: Any,
    data: _Data,
    fit: FitResult,
    params: Mapping[str, Any],
    out_dir: Path,
    device: str,
    log: LogFn,
    sources: Mapping[str, Any],
) -> TrainResult:
    dev_metrics = None
    if data.dev_texts is not None:
        best = fit.history[fit.best_epoch - 1]
        dev_metrics = {k: v for k, v in best.items() if k not in ("epoch", "seconds")}
    meta = {
        "kind": "sequence_classifier",
        "labels": data.names,
        "label_values": data.values,
        **sources,
        "params": {
            **params,
            "train_rows": len(data.train_texts),
            "augmented_rows": data.augmented,
            "dev_rows": len(data.dev_texts or []),
        },  # fmt: skip
        "history": fit.history,
        "epochs_run": len(fit.history),
        "best_epoch": fit.best_epoch,
        "dev_metrics": dev_metrics,
        "device": device,
        "train_seconds": round(fit.seconds, 2),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "explainlm_version": package_version(),
    }
    save_model_dir(model, tokenizer, meta, out_dir)
    log(f"saved the epoch-{fit.best_epoch} model to {out_dir} ({fit.seconds:.0f} s of training)")
    return TrainResult(out_dir, data.names, fit.history, fit.best_epoch, dev_metrics,
                       meta["train_seconds"], device, data.values)  # fmt: skip
