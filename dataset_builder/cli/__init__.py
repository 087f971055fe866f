"""The ``vecs`` command — a composition root: it wires every stage and the model half into one CLI.

It sits on top of everything it imports, so its modules import the stages inside the commands that use them
(only typer, rich, the config and the model registry, which imports no model code, load with ``vecs --help``).
"""
from __future__ import annotations

import typer

from annotation.cli import argilla_app

from . import demo, factory, models

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="VECS — a factory for Vietnamese–English code-switched speech data and models.",
    pretty_exceptions_enable=False,
)
for _name, _command in (("synth", factory.synth), ("ingest", factory.ingest), ("prelabel", factory.prelabel),
                        ("status", factory.status), ("export", factory.export_cmd), ("remove", factory.remove), ("demo", demo.demo),
                        ("transcribe", models.transcribe_cmd), ("evaluate", models.evaluate_cmd),
                        ("convert", models.convert_cmd)):
    app.command(_name)(_command)
app.add_typer(argilla_app, name="argilla")
app.add_typer(models.train_app, name="train")


def main() -> None:  # console-script entry point
    app()
