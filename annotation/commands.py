"""``vecs argilla push | pull | users add | agreement``: talk to any Argilla through ARGILLA_API_URL / _KEY."""
from __future__ import annotations

import json
import os
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.progress import Progress

err = Console(stderr=True)


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _audio_base_url() -> str | None:
    """The clip server's URL: given explicitly, or the one ``vecs argilla serve`` recorded."""
    from dataset_builder.foundation.config import get_settings

    url = os.environ.get("VECS_AUDIO_BASE_URL")
    if url:
        return url
    state = get_settings().home / "argilla" / "server.json"
    if state.exists():
        return json.loads(state.read_text()).get("audio_url")
    return None


def push(
    dataset: str = typer.Option("vecs-verify", "--dataset", help="Argilla dataset name."),
    workspace: str = typer.Option("vecs", "--workspace", help="Argilla workspace."),
    min_submitted: int = typer.Option(1, "--min-submitted", min=1, help="Answers needed per record."),
    double_check: float = typer.Option(0.0, "--double-check", min=0.0, max=1.0,
                                       help="Fraction also sent to two annotators (dataset NAME-double)."),
    audio_base_url: Optional[str] = typer.Option(None, "--audio-base-url",
                                                 help="Where browsers fetch clips (default: the local serve's)."),
    embed_audio: bool = typer.Option(False, "--embed-audio", help="Put clips in the records as data URLs."),
    create_workspace: bool = typer.Option(False, "--create-workspace", help="Create the workspace if missing."),
    batch_size: int = typer.Option(200, "--batch-size", min=1),
) -> None:
    """Push pre-labeled segments (one record each, overlap duplicates excluded) for verification."""
    from dataset_builder.foundation.config import get_settings

    from .client import AnnotationError, connect
    from .push import push as run_push

    try:
        client = connect()
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("push", total=None)
            report = run_push(get_settings(), client, dataset=dataset, workspace_name=workspace,
                              min_submitted=min_submitted, double_check=double_check,
                              audio_base_url=audio_base_url or _audio_base_url(), embed_audio=embed_audio,
                              batch_size=batch_size, create_workspace=create_workspace,
                              on_batch=lambda done: bar.update(task, completed=done))
    except AnnotationError as exc:
        _fail(exc)
    err.print(f"{report.created} records created, {report.updated} updated, {report.unchanged} unchanged, "
              f"{report.skipped_answered} left alone (already answered), {report.double_check} to double-check")
    for video_id in report.missing_audio:
        err.print(f"[yellow]skipped[/yellow] video {video_id}: its audio file is missing")

def pull(
    dataset: str = typer.Option("vecs-verify", "--dataset"),
    workspace: str = typer.Option("vecs", "--workspace"),
) -> None:
    """Pull submitted and discarded answers into the state store (incremental)."""
    from dataset_builder.foundation.config import get_settings

    from .client import AnnotationError, connect
    from .pull import pull as run_pull

    try:
        report = run_pull(get_settings(), connect(), dataset=dataset, workspace_name=workspace)
    except AnnotationError as exc:
        _fail(exc)
    err.print(f"{report.verified} verified, {report.discarded} discarded, {report.unchanged} unchanged, "
              f"{report.unknown} not in this store; {report.chunks_verified} chunks now fully verified")

def simulate_review(
    corpus: str = typer.Option(..., "--corpus", help="A synthetic corpus folder (its truth.jsonl)."),
    dataset: str = typer.Option("vecs-demo", "--dataset", help="The demo's dataset (never a production one)."),
    workspace: str = typer.Option("vecs-demo", "--workspace", help="The demo's workspace (never a production one)."),
) -> None:
    """SIMULATED annotator for the offline demo: accepts or corrects suggestions against the synthetic
    corpus' ground truth, through the REST endpoint the Argilla UI uses. Not for real data: it refuses the
    production dataset and workspace names, and any dataset with videos that are not in the corpus."""
    from pathlib import Path

    from dataset_builder.foundation.config import get_settings

    from .client import AnnotationError, connect
    from .reviewer import check_not_production, load_truth, review, reviewer_key

    try:
        check_not_production(dataset, workspace)
    except AnnotationError as exc:
        _fail(exc)
    truth_file = Path(corpus) / "truth.jsonl"
    if not truth_file.exists():
        _fail(AnnotationError(f"{truth_file}: no such file (the simulated reviewer needs a synthetic corpus)"))
    try:
        owner = connect()
        key = reviewer_key(owner, get_settings().home, workspace)
        report = review(str(owner.http_client.base_url), key, load_truth(Path(corpus)), dataset=dataset, workspace_name=workspace)
    except AnnotationError as exc:
        _fail(exc)
    err.print(f"simulated review: {report.accepted} accepted, {report.corrected} corrected, "
              f"{report.discarded} discarded")

def users_add(
    name: str = typer.Argument(..., help="Username."),
    role: str = typer.Option("annotator", "--role", help="annotator, admin or owner."),
    workspace: str = typer.Option("vecs", "--workspace"),
    create_workspace: bool = typer.Option(False, "--create-workspace"),
) -> None:
    """Create an account and print its credentials (shown once)."""
    from .client import AnnotationError, connect
    from .team import add_user

    try:
        user = add_user(connect(), name, role, workspace, create_workspace)
    except AnnotationError as exc:
        _fail(exc)
    sys.stdout.write(f"username: {user.username}\npassword: {user.password}\n"
                     f"api key:  {user.api_key}\nrole:     {user.role}\nworkspace: {user.workspace}\n")

def agreement(
    dataset: str = typer.Option("vecs-verify-double", "--dataset", help="The double-check dataset."),
    workspace: str = typer.Option("vecs", "--workspace"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """WER/CER between annotators on double-annotated records."""
    from dataclasses import asdict

    from .client import AnnotationError, connect
    from .team import agreement as run_agreement

    try:
        result = run_agreement(connect(), dataset, workspace)
    except AnnotationError as exc:
        _fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")
        return
    sys.stdout.write(
        f"{result.records} records, {result.pairs} pairs: transcript WER {result.transcript_wer:.1%}, "
        f"CER {result.transcript_cer:.1%}, identical {result.identical_transcripts:.0%}; "
        f"translation WER {result.translation_wer:.1%}\n")


def register(app: typer.Typer) -> None:
    """Adds these commands to ``vecs argilla``."""
    for name, command in (("push", push), ("pull", pull), ("simulate-review", simulate_review),
                          ("agreement", agreement)):
        app.command(name)(command)
    users = typer.Typer(help="Annotator accounts.", no_args_is_help=True)
    users.command("add")(users_add)
    app.add_typer(users, name="users")
