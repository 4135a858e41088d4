"""Opening the run store so that a damaged file never blocks a command.

:func:`open_store` opens (creating or migrating) the store; when the file cannot be read as a store
(truncated, zero bytes, garbage, a folder) it is moved aside to ``runs.duckdb.damaged-<time>``, one
warning line says so and where, and a fresh store is started; ``explainlm runs doctor`` salvages
the readable runs of the moved file. Runs left ``running`` by a dead process are marked
``interrupted`` the first time a process opens the store.

``EXPLAINLM_NO_STORE=1`` (the CLI's ``--no-store``) records nothing lasting: runs go to a store in
a temporary folder removed at exit.

>>> import tempfile, pathlib
>>> home = pathlib.Path(tempfile.mkdtemp())
>>> _ = (home / "runs.duckdb").write_bytes(b"")            # a zero-byte file
>>> store = open_store(home / "runs.duckdb", warn=lambda _line: None)
>>> store.schema_version > 0, len(damaged_copies(store.path))
(True, 1)
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from explainlm.errors import UserError
from explainlm.paths import home_dir
from explainlm.store.runs import RunStore, StoreDamaged, default_store_path

log = logging.getLogger("explainlm.store")
_CHECKED: set[Path] = set()  # stores whose stale runs this process has marked
_LOCK = threading.Lock()
_TEMP: list[Path] = []


def no_store() -> bool:
    """True when runs should not be recorded (``EXPLAINLM_NO_STORE=1``, the CLI's ``--no-store``)."""
    return os.environ.get("EXPLAINLM_NO_STORE", "").strip().lower() in ("1", "true", "yes")


def _temporary_path() -> Path:
    with _LOCK:
        if not _TEMP:
            folder = Path(tempfile.mkdtemp(prefix="explainlm-nostore-"))
            _TEMP.append(folder)
            atexit.register(shutil.rmtree, folder, True)
        return _TEMP[0] / "runs.duckdb"


def check_home() -> Path:
    """``EXPLAINLM_HOME``, refused in one line when it is a file."""
    home = home_dir()
    if home.exists() and not home.is_dir():
        raise UserError(
            f"EXPLAINLM_HOME={home} is a file, not a folder: point EXPLAINLM_HOME at a folder "
            "(or pass --no-store)"
        )
    return home


def damaged_copies(path: Path) -> list[Path]:
    """Files moved aside from the store at ``path``, oldest first."""
    found = path.parent.glob(f"{path.name}.damaged-*")
    return sorted(p for p in found if not p.name.endswith(".wal"))


def move_aside(path: Path) -> Path:
    """Rename a damaged store (and its write-ahead log) to ``<name>.damaged-<time>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    os.replace(path, target)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + ".wal"))
    return target


def open_store(
    path: str | os.PathLike[str] | None = None,
    *,
    repair: bool = True,
    warn: Callable[[str], None] | None = None,
) -> RunStore:
    """Open (creating or migrating) the run store at ``path`` or the default location.

    ``repair``: a damaged store is moved aside (``warn`` gets one line saying where) and a fresh
    one started; without it :class:`StoreDamaged` is raised.
    """
    if path is None:
        if no_store():
            return RunStore(_temporary_path())
        check_home()
    target = Path(path) if path is not None else default_store_path()
    try:
        store = RunStore(target)
    except StoreDamaged as e:
        if not repair:
            raise
        store = _fresh_after(e, target, warn or log.warning)
    with _LOCK:
        first = store.path.resolve() not in _CHECKED
        _CHECKED.add(store.path.resolve())
    if first:
        store.mark_stale_runs()
    return store


def _without(detail: str, path: Path) -> str:
    return detail.replace(f' "{path}"', "").replace(str(path), "the file")


def _fresh_after(e: StoreDamaged, target: Path, warn: Callable[[str], None]) -> RunStore:
    try:
        if target.exists():
            moved = move_aside(target)
            warn(
                f"the run store {target} was damaged ({_without(e.detail, target)}); moved it to {moved.name} and "
                "started a fresh one (`explainlm runs doctor` salvages its runs)"
            )
    except FileNotFoundError:  # another process moved it first
        pass
    except OSError as err:
        raise UserError(
            f"the run store {target} is damaged ({e.detail}) and cannot be moved aside ({err}); "
            "pass --no-store or set EXPLAINLM_HOME to another folder"
        ) from None
    return RunStore(target)
