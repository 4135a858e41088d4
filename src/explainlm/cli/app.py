"""The ``explainlm`` command: one typer app; each command lives in its own module."""

from __future__ import annotations

import logging
import os
import sys

import click
import typer
from rich.markup import escape

from explainlm.cli import (
    behaviour,
    benchmark,
    demo,
    explain,
    generate,
    internals,
    models,
    predict,
    runs,
    serve,
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

for module in (predict, explain, generate, benchmark, internals, models, runs, serve, demo):
    module.register(app)
behaviour.register(app)  # explainlm global …

try:  # training lives in its own module (heavier imports happen inside the command)
    from explainlm.cli import train

    train.register(app)
except ImportError:  # pragma: no cover - only while the module is absent
    pass


# Recent typer vendors its own click: catch both its exceptions and click's.
_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)
_CLICK_ERRORS: tuple[type[Exception], ...] = (click.ClickException,)
try:
    from typer._click.exceptions import ClickException as _TyperClickException

    _CLICK_ERRORS += (_TyperClickException,)
except ImportError:  # pragma: no cover - typer versions that use click itself
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
