"""Writing a trained classifier directory: refuse to clobber foreign files, swap in atomically.

>>> import tempfile, pathlib
>>> prepare_output(pathlib.Path(tempfile.mkdtemp()) / "new-model")   # a new directory is fine
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from explainlm.errors import UserError
from explainlm.models.sources import META_FILE


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence the 'newly initialized weights' messages: a new head is the point of training."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _trained_here(output_dir: Path) -> bool:
    try:
        meta = json.loads((output_dir / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "label_values" in meta


def prepare_output(output_dir: Path) -> None:
    """Refuse an output path that is a file, or a non-empty directory not written by training."""
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"output {output_dir} exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not _trained_here(output_dir):
        raise UserError(
            f"output directory {output_dir} is not empty and holds no trained model; "
            "choose a new directory (a previous `explainlm train` output is replaced)"
        )


def package_version() -> str:
    """The installed explainlm version ("unknown" when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("explainlm")
    except PackageNotFoundError:
        return "unknown"


def _readable(directory: Path) -> None:
    """mkdtemp makes a private (0700) directory; give the saved model the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for f in directory.iterdir():
        f.chmod(0o666 & ~umask)


def save_model_dir(model: Any, tokenizer: Any, meta: dict[str, Any], out_dir: Path) -> None:
    """Write into a temporary sibling directory, then swap it in (no half-written model dirs)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        _readable(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
