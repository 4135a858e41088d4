"""Differentiate (or fit) a different target than the one the engine reports.

The trust candidates explain the engine's label but compute their scores on another function of the
class scores, e.g. the verbalizer log-odds instead of the renormalised probability (for two labels
the log-odds log p_c − log(1 − p_c) equals the contrastive logit difference s_c − s_other of Yin &
Neubig, 2022). The label (and so the sign of every score) stays the engine's.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.targets import ClassTarget

SCORE_TARGETS = ("prob", "log_odds", "logit")


def check_score_target(method: str, kind: str) -> None:
    if kind not in SCORE_TARGETS:
        raise UserError(f"{method}: target must be one of {', '.join(SCORE_TARGETS)}")


@contextmanager
def retargeted(engine: Engine, kind: str) -> Iterator[Engine]:
    """A shallow copy of ``engine`` whose target is ``kind`` for the same labels.

    Its forward passes are added to ``engine.passes`` when the block ends.
    """
    if kind == engine.target.kind:
        yield engine
        return
    other = copy.copy(engine)
    other.target = ClassTarget(kind, engine.target.label)
    before = other.passes
    try:
        yield other
    finally:
        engine.passes += other.passes - before


def text_generator(seed: int, text: str) -> torch.Generator:
    """A CPU generator seeded by ``seed`` and the text, so draws do not depend on the batch."""
    return torch.Generator(device="cpu").manual_seed(seed * 1_000_003 + zlib.crc32(text.encode()))
