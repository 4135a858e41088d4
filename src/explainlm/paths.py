"""Where explainlm reads data and writes caches and its run store.

| what | environment variable | default |
| --- | --- | --- |
| data directory | ``EXPLAINLM_DATA`` | ``../shared/data`` beside the working directory's checkout |
| model cache | ``EXPLAINLM_CACHE`` | ``~/.cache/explainlm`` |
| run store and other state | ``EXPLAINLM_HOME`` | ``~/.local/share/explainlm`` |
"""

from __future__ import annotations

import os
from pathlib import Path

from explainlm.errors import UserError


def cache_dir() -> Path:
    """The model cache (``EXPLAINLM_CACHE``, default ``~/.cache/explainlm``)."""
    return Path(
        os.environ.get("EXPLAINLM_CACHE", Path.home() / ".cache" / "explainlm")
    ).expanduser()


def home_dir() -> Path:
    """Where the run store lives (``EXPLAINLM_HOME``, default ``~/.local/share/explainlm``)."""
    default = Path.home() / ".local" / "share" / "explainlm"
    return Path(os.environ.get("EXPLAINLM_HOME", default)).expanduser()


def _default_data_candidates() -> list[Path]:
    here = Path.cwd().resolve()
    found = [here / ".." / "shared" / "data"]
    # A checkout's root is where pyproject.toml is; the data sits beside the checkout.
    for parent in [here, *here.parents]:
        if (parent / "pyproject.toml").exists():
            found.append(parent.parent / "shared" / "data")
            break
    package_root = Path(__file__).resolve().parents[2]
    found.append(package_root.parent / "shared" / "data")
    return found


def data_dir(explicit: str | os.PathLike[str] | None = None, *, must_exist: bool = True) -> Path:
    """Resolve the data directory: ``explicit`` (``--data-dir``), ``EXPLAINLM_DATA``, or ``../shared/data``.

    Raises :class:`UserError` naming every path it looked at when none exists.

    >>> data_dir("/nonexistent", must_exist=False)
    PosixPath('/nonexistent')
    """
    if explicit is not None:
        candidates = [Path(explicit).expanduser()]
    elif os.environ.get("EXPLAINLM_DATA"):
        candidates = [Path(os.environ["EXPLAINLM_DATA"]).expanduser()]
    else:
        candidates = _default_data_candidates()
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    if not must_exist:
        return candidates[0]
    looked = ", ".join(str(c.resolve()) for c in dict.fromkeys(candidates))
    raise UserError(
        f"data directory not found (looked for {looked}); set EXPLAINLM_DATA or pass --data-dir"
    )


def dataset_path(relative: str, explicit_dir: str | os.PathLike[str] | None = None) -> Path:
    """A file or folder inside the data directory, with a clear error when it is missing."""
    p = data_dir(explicit_dir) / relative
    if not p.exists():
        raise UserError(f"data file not found: {p}")
    return p
