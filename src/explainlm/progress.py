"""Progress and cancellation of long work: one object, passed from the front-end down to the engine.

Core code reports through a :class:`Progress` (never through its own progress bars); the front-end
decides how it is shown: a terminal bar (CLI), a job's progress field (web app), a driver's bar over
all shards (Ray). :meth:`Progress.advance` and :meth:`Progress.check` are also where a cancelled job
stops (cooperatively: a model pass in flight finishes first).

>>> p = Progress()
>>> p.start("explaining", total=4, estimate_s=2.0)
>>> p.advance(3)
>>> round(p.fraction, 2), p.stage
(0.75, 'explaining')
>>> p.cancel()
>>> p.advance()
Traceback (most recent call last):
...
explainlm.progress.Cancelled: cancelled
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from explainlm.errors import ExplainlmError


class Cancelled(ExplainlmError):
    """The job was cancelled (by the user, a disconnected client, or a signal).

    ``status`` is what its run ends as: ``cancelled``, or ``interrupted`` when the job was stopped
    by its server shutting down (it can be resumed).
    """

    def __init__(self, message: str = "cancelled", status: str = "cancelled") -> None:
        super().__init__(message)
        self.status = status


class _CancelEvent(threading.Event):
    """The cancellation flag shared by a progress and its children, with the reason."""

    status = "cancelled"


class Progress:
    """Counts work done in named stages; subclasses render it by overriding :meth:`render`.

    ``start(stage, total, estimate_s=…)`` opens a stage (``total`` units; an up-front estimate of its
    duration in seconds when known); ``advance(n)`` adds done units. ``eta_s`` extrapolates from the
    measured rate, falling back to the estimate before the first unit is done.
    """

    def __init__(self) -> None:
        self.stage = ""
        self.total: float | None = None
        self.done = 0.0
        self.estimate_s: float | None = None
        self.started_at = time.monotonic()
        self._cancel = _CancelEvent()

    # ------------------------------------------------------------------------- reporting
    def start(
        self, stage: str, total: float | None = None, *, estimate_s: float | None = None
    ) -> None:
        self.check()
        self.stage, self.total, self.done = stage, total, 0.0
        self.estimate_s = estimate_s
        self.started_at = time.monotonic()
        self.render()

    def advance(self, n: float = 1, message: str | None = None) -> None:
        self.check()
        self.done += n
        if message:
            self.stage = message
        self.render()

    def close(self) -> None:
        """The stage is over (renderers close their bars)."""

    # ----------------------------------------------------------------------- cancellation
    def cancel(self, status: str = "cancelled") -> None:
        """Stop the job at its next step; its run ends as ``status``."""
        self._cancel.status = status
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job was cancelled."""
        if self._cancel.is_set():
            raise Cancelled(self._cancel.status, self._cancel.status)

    # ---------------------------------------------------------------------------- views
    @property
    def fraction(self) -> float:
        if not self.total:
            return 0.0
        return max(0.0, min(1.0, self.done / self.total))

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def eta_s(self) -> float | None:
        """Seconds left: measured rate once work is done, else the stage's up-front estimate."""
        if self.total is None:
            return None
        if self.done > 0:
            return self.elapsed_s / self.done * max(self.total - self.done, 0.0)
        return self.estimate_s

    def render(self) -> None:
        """Show the current state (no-op here)."""

    def nested_start(self, child: Progress) -> None:
        """A stage of nested work (:meth:`child`) started: renderers may show it (no-op here)."""

    def child(self, units: float = 1) -> Progress:
        """A progress for nested work worth ``units`` of this stage (e.g. one chunk's passes).

        The child's stages fill those units as they advance (shown through this progress) and it
        shares this progress's cancellation. When the nested work is done the caller advances
        this progress by ``units`` itself; the child's partial credit is then dropped. Starting
        nested work is a cancellation point.
        """
        self.check()
        return _ChildProgress(self, units)

    @contextmanager
    def stage_of(
        self, stage: str, total: float | None = None, *, estimate_s: float | None = None
    ) -> Iterator[Progress]:
        """``with progress.stage_of("scoring", n): …`` — start a stage and close it afterwards."""
        self.start(stage, total, estimate_s=estimate_s)
        try:
            yield self
        finally:
            self.close()


class _ChildProgress(Progress):
    """See :meth:`Progress.child`."""

    def __init__(self, parent: Progress, units: float) -> None:
        super().__init__()
        self._parent, self._units = parent, units
        self._cancel = parent._cancel
        self._base = parent.done

    def start(
        self, stage: str, total: float | None = None, *, estimate_s: float | None = None
    ) -> None:
        self.check()
        self.stage, self.total, self.done = stage, total, 0.0
        self.estimate_s, self.started_at = estimate_s, time.monotonic()
        self._parent.nested_start(self)
        self.render()

    def nested_start(self, child: Progress) -> None:
        self._parent.nested_start(child)

    def render(self) -> None:
        self._parent.done = self._base + self._units * self.fraction
        self._parent.render()

    def close(self) -> None:
        self._parent.done = self._base


class TerminalProgress(Progress):
    """A progress bar on stderr (tqdm) per stage, with the up-front estimate printed first.

    ``min_total``: stages with fewer units show no bar (short work stays quiet). Bars are drawn
    only on a terminal (``always=True``: also into pipes and files), so scripts reading stderr see
    error lines only — but the up-front estimate of a stage expected to take ``long_s`` seconds or
    more is printed anywhere (one line: how long to expect, before the work starts).
    """

    long_s = 60.0

    def __init__(self, *, min_total: float = 2, file: Any = None, always: bool = False) -> None:
        super().__init__()
        self.min_total = min_total
        self.file = file if file is not None else sys.stderr
        self.always = always
        self._bar: Any = None
        self._nested: Progress | None = None  # nested work shown when this stage has no bar
        self._nested_bar: Any = None

    @property
    def visible(self) -> bool:
        isatty = getattr(self.file, "isatty", None)
        return self.always or bool(isatty and isatty())

    def start(
        self, stage: str, total: float | None = None, *, estimate_s: float | None = None
    ) -> None:
        self.close()
        super().start(stage, total, estimate_s=estimate_s)
        if total is None or total < self.min_total:
            return
        if estimate_s is not None and (self.visible or estimate_s >= self.long_s):
            print(
                f"{stage}: {total:g} steps, estimated {format_seconds(estimate_s)}",
                file=self.file,
                flush=True,
            )
        if self.visible:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=stage, file=self.file, dynamic_ncols=True)

    def nested_start(self, child: Progress) -> None:
        """Nested work (an engine's passes inside one text): its estimate is printed like a
        stage's; when this stage has no bar of its own (one long text), the nested stage gets one."""
        total, estimate = child.total, child.estimate_s
        if estimate is not None and total and (self.visible or estimate >= self.long_s):
            print(
                f"{child.stage}: {total:g} steps, estimated {format_seconds(estimate)}",
                file=self.file,
                flush=True,
            )
        if self._bar is not None or not self.visible or not total or total < self.min_total:
            return
        from tqdm import tqdm

        self._close_nested()
        self._nested = child
        self._nested_bar = tqdm(total=total, desc=child.stage, file=self.file, dynamic_ncols=True)

    def render(self) -> None:
        if self._bar is not None:
            self._bar.n = _count(self.done)
            self._bar.set_description(self.stage, refresh=False)
            self._bar.refresh()
        if self._nested_bar is not None and self._nested is not None:
            self._nested_bar.n = _count(self._nested.done)
            self._nested_bar.refresh()

    def _close_nested(self) -> None:
        if self._nested_bar is not None:
            self._nested_bar.close()
        self._nested, self._nested_bar = None, None

    def close(self) -> None:
        self._close_nested()
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _count(done: float) -> float:
    """A whole number of units shows as one (``3/5``, not ``3.0/5``)."""
    return int(done) if float(done).is_integer() else done


def format_seconds(s: float) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``."""
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def as_progress(progress: Progress | bool | None) -> Progress:
    """A library call's ``progress`` argument: a :class:`Progress`, ``True`` (a terminal bar) or off."""
    if isinstance(progress, Progress):
        return progress
    return TerminalProgress() if progress else Progress()
