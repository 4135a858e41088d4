"""The training loop: model with a new head, AdamW with warmup, epochs with dev-based early stopping."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explainlm.models.sources import resolve_source
from explainlm.progress import Progress
from explainlm.training.batching import collate, length_batches, predict_ids
from explainlm.training.metrics import classification_metrics, format_metrics
from explainlm.training.output import quiet_transformers

LogFn = Callable[[str], None]


def build_model(base_model: str, names: Sequence[str], device: torch.device) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = resolve_source(base_model)
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
    model.to(device)
    return model, tokenizer


def _optimizer(model: Any, p: Mapping[str, Any], total_steps: int) -> tuple[Any, Any]:
    """AdamW (no weight decay on biases and norms) with linear warmup and decay."""
    from transformers.optimization import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    named = list(model.named_parameters())
    groups = [
        {"params": [w for n, w in named if not n.endswith(no_decay)],
         "weight_decay": p["weight_decay"]},
        {"params": [w for n, w in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, lr=p["learning_rate"])
    warmup = int(p["warmup_ratio"] * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


@dataclass
class FitResult:
    """What the epoch loop produced."""

    history: list[dict[str, Any]]
    best_epoch: int
    seconds: float


def _train_epoch(
    model: Any,
    batches: list[list[int]],
    ids: list[list[int]],
    labels: torch.Tensor,
    pad_id: int,
    device: torch.device,
    opt: tuple[Any, Any],
    progress: Progress,
    stage: str,
) -> float:
    optimizer, scheduler = opt
    model.train()
    total_loss, seen = 0.0, 0
    progress.start(stage, len(batches))
    for idx in batches:
        out = model(**collate(ids, idx, pad_id, device), labels=labels[idx].to(device))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        total_loss += out.loss.detach().item() * len(idx)
        seen += len(idx)
        progress.advance(1)
    progress.close()
    return total_loss / max(seen, 1)


def fit(
    model: Any,
    tokenizer: Any,
    data: Any,
    p: Mapping[str, Any],
    device: torch.device,
    progress: Progress,
    log: LogFn,
) -> FitResult:
    """Train for up to ``epochs`` epochs; with a dev set keep the best epoch's weights."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def encode(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, truncation=True, max_length=p["max_length"])["input_ids"]

    train_ids = encode(data.train_texts)
    dev_ids = encode(data.dev_texts) if data.dev_texts is not None else []
    epochs, batch_size = p["epochs"], p["batch_size"]
    opt = _optimizer(model, p, -(-len(train_ids) // batch_size) * epochs)
    labels_t = torch.tensor(data.train_y, dtype=torch.long)
    lengths = [len(x) for x in train_ids]
    history: list[dict[str, Any]] = []
    best_epoch, best_acc, best_state, bad_epochs = 0, -1.0, None, 0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        batches = length_batches(lengths, batch_size, np.random.default_rng([p["seed"], epoch]))
        loss = _train_epoch(model, batches, train_ids, labels_t, pad_id, device, opt, progress,
                            f"epoch {epoch}/{epochs}")  # fmt: skip
        row: dict[str, Any] = {"epoch": epoch, "train_loss": loss,
                               "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        if data.dev_texts is None:
            best_epoch = epoch
            log(f"epoch {epoch}: train loss {loss:.4f}")
        else:
            pred = predict_ids(model, dev_ids, batch_size, pad_id, device)
            row.update(classification_metrics(data.dev_y, pred, data.names))
            log(f"epoch {epoch}: train loss {loss:.4f}\n"
                + format_metrics(row, data.names, f"dev (epoch {epoch})"))  # fmt: skip
            if row["accuracy"] > best_acc:
                best_epoch, best_acc, bad_epochs = epoch, row["accuracy"], 0
                best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
            else:
                bad_epochs += 1
        history.append(row)
        if data.dev_texts is not None and bad_epochs >= p["patience"] and epoch < epochs:
            log(f"early stopping: no better dev accuracy for {bad_epochs} epoch(s); "
                f"best epoch {best_epoch} (accuracy {best_acc:.4f})")  # fmt: skip
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(history, best_epoch, time.perf_counter() - start)
