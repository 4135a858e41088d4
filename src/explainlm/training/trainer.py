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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explainlm.datasets.core import read_labelled
from explainlm.errors import DataFormatError, UserError
from explainlm.models.sources import resolve_source
from explainlm.training.batching import collate, length_batches, predict_ids
from explainlm.training.metrics import classification_metrics, format_metrics
from explainlm.training.output import (
    package_version,
    prepare_output,
    quiet_transformers,
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
    device: str | None = None,
    progress: bool = True,
    log: LogFn = print,
) -> TrainResult:
    """Fine-tune ``base_model`` on a labelled file (TSV/CSV/JSONL, or a dataset ``NAME:SPLIT``) and save it.

    Labels are the sorted unique values of the training file's ``label_column``; ``label_names``
    renames them in that order (``["negative", "positive"]`` for SST-2's ``0``/``1``). With a dev
    file, every epoch is evaluated on it, training stops after ``patience`` epochs without a better
    dev accuracy, and the best epoch's weights are saved. Without one, the last epoch is saved.

    >>> r = train_classifier("train.tsv", "dev.tsv", output_dir="out", text_column="sentence",
    ...                      label_names=["negative", "positive"], epochs=2)   # doctest: +SKIP
    >>> r.best_epoch, r.labels                                               # doctest: +SKIP
    (2, ['negative', 'positive'])
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.optimization import get_linear_schedule_with_warmup

    params: dict[str, Any] = {
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
        "weight_decay": weight_decay, "warmup_ratio": warmup_ratio, "max_length": max_length,
        "seed": seed, "patience": patience, "limit": limit, "dev_limit": dev_limit,
    }  # fmt: skip
    _check_params(params)
    out_dir = Path(output_dir)
    prepare_output(out_dir)
    train = read_labelled(
        train_path, text_column=text_column, label_column=label_column, limit=limit
    )
    assert train.labels is not None
    values = _sorted_values(train.labels)
    if len(values) < 2:
        raise UserError(
            f"{train.path}: the training data has only one label ({values[0]!r}); "
            "a classifier needs at least two"
        )
    names = [str(v) for v in values]
    if label_names is not None:
        names = [str(n).strip() for n in label_names]
        if len(names) != len(values):
            raise UserError(
                f"{len(names)} label names ({', '.join(names)}) given for {len(values)} labels in "
                f"{train.path} ({', '.join(values)}); give one name per label, in sorted order"
            )
        if len(set(names)) != len(names) or not all(names):
            raise UserError(f"label names must be distinct and non-empty (got {', '.join(names)})")
    value_to_id = {v: i for i, v in enumerate(values)}
    train_y = _label_ids(train.labels, train.lines, value_to_id, train.path, values)
    dev = None
    if dev_path is not None:
        dev = read_labelled(
            dev_path, text_column=text_column, label_column=label_column, limit=dev_limit
        )
        assert dev.labels is not None
        dev_y = _label_ids(dev.labels, dev.lines, value_to_id, dev.path, values)

    source = resolve_source(base_model)
    dev_t = _resolve_device(device)
    _seed_everything(seed)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(source.path)
        model = AutoModelForSequenceClassification.from_pretrained(
            source.path,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
            ignore_mismatched_sizes=True,
            dtype=torch.float32,
        )
    model.config.architectures = [type(model).__name__]
    model.to(dev_t)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def encode(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]

    train_ids = encode(train.texts)
    dev_ids = encode(dev.texts) if dev is not None else []
    log(
        f"training {source.name} on {len(train_ids)} rows ({len(names)} labels: {', '.join(names)})"
        + (f", dev {len(dev_ids)} rows" if dev is not None else ", no dev file")
        + f"; device {dev_t}"
    )

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(groups, lr=learning_rate)
    steps_per_epoch = -(-len(train_ids) // batch_size)
    total = steps_per_epoch * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    labels_t = torch.tensor(train_y, dtype=torch.long)
    lengths = [len(x) for x in train_ids]

    from tqdm.auto import tqdm

    history: list[dict[str, Any]] = []
    best_epoch, best_acc, best_state, bad_epochs = 0, -1.0, None, 0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        rng = np.random.default_rng([seed, epoch])
        batches = length_batches(lengths, batch_size, rng)
        total_loss, seen = 0.0, 0
        bar = tqdm(batches, desc=f"epoch {epoch}/{epochs}", disable=not progress, unit="batch")
        for step, idx in enumerate(bar, start=1):
            out = model(**collate(train_ids, idx, pad_id, dev_t), labels=labels_t[idx].to(dev_t))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total_loss += out.loss.detach().item() * len(idx)
            seen += len(idx)
            if step % 20 == 0 or step == len(batches):
                bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        bar.close()
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total_loss / max(seen, 1),
            "seconds": round(time.perf_counter() - start, 1),
        }
        if dev is not None:
            metrics = classification_metrics(
                dev_y, predict_ids(model, dev_ids, batch_size, pad_id, dev_t), names
            )
            row.update(metrics)
            log(
                f"epoch {epoch}: train loss {row['train_loss']:.4f}\n"
                + format_metrics(metrics, names, f"dev (epoch {epoch})")
            )
            if metrics["accuracy"] > best_acc:
                best_epoch, best_acc, bad_epochs = epoch, metrics["accuracy"], 0
                best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
            else:
                bad_epochs += 1
        else:
            best_epoch = epoch
            log(f"epoch {epoch}: train loss {row['train_loss']:.4f}")
        history.append(row)
        if dev is not None and bad_epochs >= patience and epoch < epochs:
            log(
                f"early stopping: no better dev accuracy for {bad_epochs} epoch(s); "
                f"best epoch {best_epoch} (accuracy {best_acc:.4f})"
            )
            break
    train_seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    dev_metrics = history[best_epoch - 1] if dev is not None else None
    dev_metrics = (
        {k: v for k, v in dev_metrics.items() if k not in ("epoch", "seconds")}
        if dev_metrics
        else None
    )

    meta = {
        "kind": "sequence_classifier",
        "labels": names,
        "label_values": values,
        "base_model": str(base_model),
        "train_file": _source_name(train_path),
        "dev_file": _source_name(dev_path) if dev_path is not None else None,
        "text_column": text_column,
        "label_column": label_column,
        "params": {**params, "train_rows": len(train_ids), "dev_rows": len(dev_ids)},
        "history": history,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "dev_metrics": dev_metrics,
        "device": str(dev_t),
        "train_seconds": round(train_seconds, 2),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "explainlm_version": package_version(),
    }
    save_model_dir(model, tokenizer, meta, out_dir)
    log(f"saved the epoch-{best_epoch} model to {out_dir} ({train_seconds:.0f} s of training)")
    return TrainResult(
        out_dir, names, history, best_epoch, dev_metrics, meta["train_seconds"], str(dev_t), values
    )
