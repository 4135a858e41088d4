"""The ``explainlm`` command: one typer app; each command lives in its own module."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer
from rich.markup import escape

from explainlm.cli import (
    audit,
    behaviour,
    benchmark,
    case,
    compare,
    demo,
    explain,
    generate,
    internals,
    models,
    predict,
    runs,
    train,
    whatif,
)
from explainlm.cli.common import err_console
from explainlm.errors import UserError
from explainlm.store import recording

app = typer.Typer(
    name="explainlm",
    help="Explain language-model predictions, check the explanations, and do it fast.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _options(
    no_store: Annotated[
        bool,
        typer.Option(
            "--no-store",
            help="Record nothing in the run store (also EXPLAINLM_NO_STORE=1); not resumable.",
        ),
    ] = False,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="Text encoding of every input file this command reads (default UTF-8).",
        ),
    ] = None,
) -> None:
    """Explain language-model predictions, check the explanations, and do it fast."""
    from explainlm.datasets.tables import text_encoding

    if no_store:
        os.environ["EXPLAINLM_NO_STORE"] = "1"
    if encoding is not None:
        os.environ["EXPLAINLM_ENCODING"] = text_encoding(encoding)


COMMAND_MODULES = (
    predict,
    explain,
    generate,
    benchmark,
    internals,
    behaviour,  # explainlm global …
    whatif,  # counterfactual, attack, anchor
    audit,
    compare,
    train,
    models,
    runs,
    demo,
    case,  # explainlm case DOMAIN
)
for module in COMMAND_MODULES:
    module.register(app)

# Commands other packages contribute (the web app's ``serve``, plugins): the ``explainlm.commands``
# entry points, each a ``register(app)`` function. The CLI never imports another front-end.
for _entry in entry_points(group="explainlm.commands"):
    try:
        _entry.load()(app)
    except ImportError as _e:  # a broken plugin must not take every other command down
        logging.getLogger(__name__).warning("command %s unavailable: %s", _entry.name, _e)


# Recent typer vendors its own click (and no longer needs click itself): catch typer's exceptions
# and, when click is installed, click's.
_EXIT: tuple[type[BaseException], ...] = (typer.Exit,)
_ABORT: tuple[type[BaseException], ...] = (typer.Abort,)
_CLICK_ERRORS: tuple[type[Exception], ...] = ()
try:
    from typer._click.exceptions import ClickException as _TyperClickException

    _CLICK_ERRORS += (_TyperClickException,)
except ImportError:  # pragma: no cover - typer versions that use click itself
    pass
try:
    import click

    _EXIT += (click.exceptions.Exit,)
    _ABORT += (click.exceptions.Abort,)
    _CLICK_ERRORS += (click.ClickException,)
except ImportError:  # pragma: no cover - click is optional with recent typer
    pass


# How to resume a run of each resumable command (the run's recorded command → the CLI's words).
RESUME_COMMANDS = {
    "benchmark": "benchmark",
    "explain": "explain",
    "generate": "generate",
    "compare": "compare",
    "counterfactual": "counterfactual",
    "attack": "attack",
    "anchor": "anchor",
    **{f"global-{k}": f"global {k}" for k in ("importance", "surrogate", "sensitivity", "layers")},
    **{f"audit-{k}": f"audit {k}" for k in ("fairness", "counterfactual", "lm-bias", "bios")},
}


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, process managers): handled like Ctrl-C, so the run is closed."""


_SIGNALLED: list[int] = []  # SIGTERM seen in this call (typer may turn the exception into Abort)


STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)  # SIGHUP: the terminal went away


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (and SIGHUP) raise :class:`Terminated` once (in the main thread; another one is
    ignored while the run is being closed)."""

    def handler(signum: int, _frame: Any) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        _SIGNALLED.append(signum)
        raise Terminated()

    try:
        previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def interrupted_message() -> str:
    """``interrupted`` plus, for each run this process left interrupted, how to resume it."""
    lines = []
    for run_id, command in recording.INTERRUPTED:
        words = RESUME_COMMANDS.get(command)
        how = (
            f"resume it with: explainlm {words} --resume {run_id}"
            if words
            else f"run the command again to redo it (`explainlm runs show {run_id}`)"
        )
        lines.append(f"interrupted: run {run_id} ({command}) was saved as interrupted; {how}")
    recording.INTERRUPTED.clear()
    return "\n".join(lines) or "interrupted"


def usage_line(e: Exception) -> str:
    """A click usage error in one line, with where to find help."""
    message = " ".join(str(getattr(e, "format_message", lambda: e)()).split())
    ctx = getattr(e, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return message + where


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: user errors print one line, never a traceback."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for noisy in ("transformers", "accelerate", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    saved = {k: os.environ.get(k) for k in ("EXPLAINLM_NO_STORE", "EXPLAINLM_ENCODING")}
    _SIGNALLED.clear()
    try:
        # Without standalone mode, an Exit raised in a command (Ctrl-C becomes Exit(130) inside
        # typer) comes back as the return value: it is the exit code.
        with _sigterm_interrupts():
            rv = app(args=argv, standalone_mode=False)
    except UserError as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        return 2
    except _EXIT as e:
        if e.exit_code == 130:  # typer's Ctrl-C
            err_console.print(interrupted_message(), markup=False, soft_wrap=True)
            return 143 if _SIGNALLED else 130
        return int(e.exit_code or 0)
    except (KeyboardInterrupt, *_ABORT) as e:
        err_console.print(interrupted_message(), markup=False, soft_wrap=True)
        return 143 if _SIGNALLED or isinstance(e, Terminated) else 130
    except _CLICK_ERRORS as e:  # usage errors: bad option values, unknown options: one line
        err_console.print(f"[red]error:[/red] {escape(usage_line(e))}", soft_wrap=True)
        return int(e.exit_code)
    finally:  # --no-store and --encoding hold for this call only (tests call main() many times)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if isinstance(rv, int) and not isinstance(rv, bool) and rv:
        if rv == 130:
            err_console.print(interrupted_message(), markup=False, soft_wrap=True)
            return 143 if _SIGNALLED else 130
        return rv
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:  # pragma: no cover - the console script
    sys.exit(main())
