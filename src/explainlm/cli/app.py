"""The ``explainlm`` command: one typer app; each command lives in its own module."""

from __future__ import annotations

import logging
import os
import sys

import click
import typer

from explainlm.cli import demo, models, predict, runs
from explainlm.cli.common import err_console
from explainlm.errors import UserError

app = typer.Typer(
    name="explainlm",
    help="Explain language-model predictions, check the explanations, and do it fast.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (predict, models, runs, demo):
    module.register(app)

try:  # training lives in its own module (heavier imports happen inside the command)
    from explainlm.cli import train

    train.register(app)
except ImportError:  # pragma: no cover - only while the module is absent
    pass


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: user errors print one line, never a traceback."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for noisy in ("transformers", "accelerate", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        app(args=argv, standalone_mode=False)
    except UserError as e:
        err_console.print(f"[red]error:[/red] {e}", soft_wrap=True)
        return 2
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:  # pragma: no cover - the console script
    sys.exit(main())
