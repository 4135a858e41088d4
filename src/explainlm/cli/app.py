"""The ``explainlm`` command: one typer app; each command lives in its own module."""

from __future__ import annotations

import logging
import os
import sys
from importlib.metadata import entry_points

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

app = typer.Typer(
    name="explainlm",
    help="Explain language-model predictions, check the explanations, and do it fast.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

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


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: user errors print one line, never a traceback."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for noisy in ("transformers", "accelerate", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        # Without standalone mode, an Exit raised in a command (Ctrl-C becomes Exit(130) inside
        # typer) comes back as the return value: it is the exit code.
        rv = app(args=argv, standalone_mode=False)
    except UserError as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        return 2
    except _EXIT as e:
        return int(e.exit_code or 0)
    except _ABORT:
        err_console.print("aborted")
        return 130
    except _CLICK_ERRORS as e:  # usage errors: bad option values, unknown options
        e.show()
        return int(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    if isinstance(rv, int) and not isinstance(rv, bool) and rv:
        if rv == 130:
            err_console.print("interrupted")
        return rv
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:  # pragma: no cover - the console script
    sys.exit(main())
