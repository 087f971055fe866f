"""``vecs argilla …``: the annotation stage's commands (registered by the ``vecs`` command, ``dataset_builder/cli/``).

Imports stay light (typer, rich): the launcher and the Argilla client load when a command runs.
"""
from __future__ import annotations

from typing import List, Optional

import typer
from rich.console import Console

argilla_app = typer.Typer(
    no_args_is_help=True,
    help="Human verification in Argilla: a local server, push / pull, users, agreement.",
    pretty_exceptions_enable=False,
)
_err = Console(stderr=True, highlight=False, soft_wrap=True)
_out = Console(highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------------------
# Server side: vecs argilla serve


@argilla_app.command()
def serve(
    port: int = typer.Option(6900, "--port", min=1, max=65534, help="Argilla's port; clips are served on port + 1."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 exposes it to the network)."),
    stop: bool = typer.Option(False, "--stop", help="Stop the server, its worker, redis and the clip server."),
    database_url: Optional[str] = typer.Option(
        None, "--database-url", envvar="VECS_ARGILLA_DATABASE_URL",
        help="Argilla's database (default: SQLite $VECS_HOME/argilla/argilla.db), e.g. postgresql://user@host/db."),
    timeout: float = typer.Option(180.0, "--timeout", help="Seconds to wait for the server to answer."),
    public_host: List[str] = typer.Option([], "--public-host",
                                          help="A name annotators use to reach this host (e.g. behind a TLS proxy); "
                                               "requests naming any other host are refused. Repeatable."),
) -> None:
    """Start a local Argilla (no Elasticsearch: searches run in SQL) in the background; print its URL and key."""
    from dataset_builder.foundation.config import get_settings

    from .server import launcher

    settings = get_settings()
    if stop:
        if launcher.stop(settings.home):
            _err.print("Argilla stopped")
        else:
            _err.print("Argilla was not running")
        return
    try:
        info = launcher.serve(settings.home, host=host, port=port, database_url=database_url, timeout=timeout,
                              on_progress=lambda msg: _err.print(msg), public_hosts=public_host)
    except launcher.LaunchError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1)
    if info.already_running:
        _out.print(f"Argilla is already running: {info.url}")
        _out.print(f"clips: {info.audio_url}")
        _out.print(f"owner {info.username}: password and API key in {info.credentials_path}")
        return
    _out.print(f"Argilla: {info.url}  (started in {info.startup_s:.1f} s; stop with: vecs argilla serve --stop)")
    _out.print(f"clips: {info.audio_url}  (serving {settings.home / 'argilla_audio'})")
    _out.print(f"owner: {info.username}  password: {info.password}  (also in {info.credentials_path}, mode 0600)")
    _out.print(f"export ARGILLA_API_URL={info.url} ARGILLA_API_KEY={info.api_key}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        hosts = ", ".join(launcher.allowed_hosts(host, public_host))
        _err.print(f"note: bound to {host}: put Argilla and the clip server (port {port + 1}) behind a TLS reverse "
                   f"proxy — passwords, API keys and recordings travel in clear over plain HTTP. They answer only "
                   f"requests naming {hosts} (add names with --public-host); push with "
                   f"--audio-base-url https://<public name>/… or http://<this-host>:{port + 1}/")


# ---------------------------------------------------------------------------------------------------------
# Client side: push, pull, users, agreement — defined in annotation/commands.py, registered here.

from . import commands as _client_commands  # noqa: E402

_client_commands.register(argilla_app)
