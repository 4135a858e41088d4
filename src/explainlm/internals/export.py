"""TensorBoard export: pooled activations for the embedding projector, probe curves as scalars.

Uses ``torch.utils.tensorboard.SummaryWriter`` (needs the ``tensorboard`` package). Browse with
``tensorboard --logdir DIR`` (the Projector tab shows one embedding per hook point, coloured by
label; the Scalars tab shows accuracy per layer as ``probe/accuracy`` etc. with the layer as step).

>>> import numpy as np, tempfile
>>> d = tempfile.mkdtemp()
>>> export_tensorboard(d, {"layers.0.resid_post": np.ones((2, 4))}, labels=["a", "b"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explainlm.errors import UserError


def _writer(logdir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise UserError(
            "TensorBoard export needs the tensorboard package: pip install tensorboard"
        ) from e
    return SummaryWriter(log_dir=str(logdir))


def _clean(value: Any) -> str:
    return " ".join(str(value).split()) or "-"  # metadata.tsv: no tabs or newlines


def export_tensorboard(
    logdir: str | os.PathLike[str],
    pooled: Mapping[str, np.ndarray | torch.Tensor],
    *,
    labels: Sequence[Any] | None = None,
    texts: Sequence[str] | None = None,
    probe: Any | None = None,
) -> Path:
    """Write ``pooled`` (``{point: [N, d]}``) to the projector, with labels and texts as metadata,
    and, when a :class:`~explainlm.internals.probing.ProbeResult` is given, its per-layer accuracy,
    control accuracy and selectivity as scalars. Returns the log directory."""
    out = Path(logdir)
    out.mkdir(parents=True, exist_ok=True)
    writer = _writer(out)
    try:
        for point, mat in pooled.items():
            m = torch.as_tensor(np.asarray(mat), dtype=torch.float32)
            n = m.shape[0]
            header: list[str] = []
            cols: list[Sequence[Any]] = []
            if labels is not None:
                header.append("label")
                cols.append(labels)
            if texts is not None:
                header.append("text")
                cols.append(texts)
            for c in cols:
                if len(c) != n:
                    raise UserError(f"{point}: {n} vectors but {len(c)} metadata rows")
            meta: Any = None
            if len(cols) == 1:
                meta = [_clean(v) for v in cols[0]]
                header_arg = None
            elif cols:
                meta = [[_clean(c[i]) for c in cols] for i in range(n)]
                header_arg = header
            else:
                header_arg = None
            writer.add_embedding(m, metadata=meta, metadata_header=header_arg, tag=point)
        if probe is not None:
            for k in range(len(probe.layers)):
                writer.add_scalar("probe/accuracy", probe.accuracy[k], k)
                writer.add_scalar("probe/control", probe.control[k], k)
                writer.add_scalar("probe/selectivity", probe.selectivity[k], k)
    finally:
        writer.close()
    return out
