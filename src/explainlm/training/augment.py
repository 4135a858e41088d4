"""Counterfactual data augmentation (CDA; Lu et al. 2018, Zmigrod et al. 2019) for training.

``augment_texts(texts, "swap:gender")`` returns ``(index, swapped text)`` for every text that holds
at least one term of the swap list: training on both copies with the same label teaches the model
that the identity terms carry no evidence for the label.

>>> augment_texts(["She is a nurse.", "The sky is blue."], "swap:gender")
[(0, 'He is a nurse.')]
"""

from __future__ import annotations

from collections.abc import Sequence

from explainlm.errors import UserError

AUGMENTATIONS = ("swap",)


def parse_augment(spec: str) -> tuple[str, str]:
    """``"swap:gender"`` → ``("swap", "gender")``; a one-line error for anything else."""
    kind, _, arg = spec.partition(":")
    if kind not in AUGMENTATIONS or not arg:
        raise UserError(
            f"unknown augmentation {spec!r}; use swap:gender, swap:race or swap:PAIRS.csv"
        )
    from explainlm.audits.swaps import get_swap_list

    get_swap_list(arg)  # validates the list (or the file) now
    return kind, arg


def augment_texts(texts: Sequence[str], spec: str) -> list[tuple[int, str]]:
    from explainlm.audits.swaps import get_swap_list, swapped_copies

    _kind, arg = parse_augment(spec)
    return swapped_copies(texts, get_swap_list(arg))
