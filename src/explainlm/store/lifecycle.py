"""Who is running a run: its process, host and heartbeat, and how a dead run is recognised.

A run in the store is ``running`` only while a live process owns it. The owner is recorded with the
run (process id, host name, the process's start time, so a reused pid is not mistaken for the
owner) and a daemon thread refreshes the run's ``heartbeat_at`` every :data:`HEARTBEAT_S` seconds.
A ``running`` run is *stale* when

* its owner ran on this host and that process is gone (or the pid now belongs to another process),
* or its heartbeat is older than :data:`STALE_S` seconds (any host).

Stale runs are marked ``interrupted`` when any command opens the store (and when the server
starts), so a killed process never leaves a run that looks live; they can be resumed.

>>> owner = this_process()
>>> owner.pid == os.getpid() and is_alive(owner.pid, owner.started)
True
>>> stale_reason({"pid": owner.pid, "host": owner.host, "pid_started": owner.started,
...               "heartbeat_at": None, "created_at": None}, now=None) is None
True
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

HEARTBEAT_S = float(os.environ.get("EXPLAINLM_HEARTBEAT_S", "15"))
STALE_S = float(os.environ.get("EXPLAINLM_STALE_S", "600"))


@dataclass(frozen=True)
class Owner:
    """The process that owns a running run."""

    pid: int
    host: str
    started: str | None  # the process's start time (Linux), or None where unknown


def process_started(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), else None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing ")"
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def this_process() -> Owner:
    pid = os.getpid()
    return Owner(pid, socket.gethostname(), process_started(pid))


def is_alive(pid: int, started: str | None) -> bool:
    """True while process ``pid`` runs on this host and is the one that started at ``started``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists but belongs to another user
        pass
    if started is not None:
        now = process_started(pid)
        if now is not None and now != started:
            return False  # the pid was reused by another process
    return True


def stale_reason(row: dict[str, Any], now: datetime | None) -> str | None:
    """Why a ``running`` run's owner is gone (a sentence), or None while it looks alive.

    ``row`` holds ``pid``, ``host``, ``pid_started``, ``heartbeat_at`` and ``created_at``; ``now``
    is the current UTC time (naive), or None to skip the heartbeat test.
    """
    pid, host = row.get("pid"), row.get("host")
    if pid is not None and host == socket.gethostname():
        if not is_alive(int(pid), row.get("pid_started")):
            return f"its process {pid} on {host} is gone"
    beat = row.get("heartbeat_at") or row.get("created_at")
    if now is not None and beat is not None:
        age = (now - _as_datetime(beat)).total_seconds()
        if age > STALE_S:
            who = f"process {pid} on {host}" if pid is not None else "its process"
            return f"no heartbeat from {who} for {age / 60:.0f} min"
    return None


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


class Heartbeat:
    """A daemon thread calling ``beat()`` every ``interval`` seconds until :meth:`stop`.

    Errors of one beat (a store busy for a moment) are ignored: the next beat tries again, and a
    run is stale only after :data:`STALE_S` seconds without any.
    """

    def __init__(self, beat: Any, interval: float = HEARTBEAT_S) -> None:
        self._beat, self._interval = beat, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="explainlm-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - see the class docstring
                pass

    def stop(self) -> None:
        self._stop.set()
