"""The command line: every command a thin layer over the library.

Expected problems (a bad scenario, an unknown component) print one line and exit with code 2;
no traceback. Each module holds a group of commands; this one puts them into one ``app``.
"""

from __future__ import annotations

import sys

import typer

from noisylink.cli import design, roles, run, scenarios, studies, training

app = typer.Typer(
    name="noisylink",
    help="Simulate image links over noisy channels: codecs, ECC, modulation, channels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for group in (run, roles, scenarios, studies, training, design):
    app.add_typer(group.app)


def main() -> None:  # pragma: no cover - console entry for `python -m noisylink`
    sys.exit(app())
