"""Annotators and how far they agree: ``vecs argilla users add`` and ``vecs argilla agreement``."""
from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass

import argilla as rg
import jiwer

from dataset_builder.foundation.text import clean_text

from .client import AnnotationError, workspace

ROLES = ("annotator", "admin", "owner")


@dataclass
class NewUser:
    username: str
    password: str
    api_key: str | None
    role: str
    workspace: str


def add_user(client: rg.Argilla, username: str, role: str, workspace_name: str, create_workspace: bool = False) -> NewUser:
    if role not in ROLES:
        raise AnnotationError(f"--role {role!r}: expected one of {', '.join(ROLES)}")
    if client.users(username) is not None:
        raise AnnotationError(f"user {username!r} already exists")
    ws = workspace(client, workspace_name, create=create_workspace)
    password = secrets.token_urlsafe(12)
    user = rg.User(username=username, password=password, role=role, client=client).create()
    user.add_to_workspace(ws)
    # The SDK's user model drops the key; the REST API gives it to an owner.
    api_key = client.http_client.get(f"/api/v1/users/{user.id}").json().get("api_key")
    return NewUser(username, password, api_key, role, workspace_name)


@dataclass
class Agreement:
    records: int
    pairs: int
    transcript_wer: float
    transcript_cer: float
    translation_wer: float
    identical_transcripts: float


def _norm(text: str | None) -> str:
    return clean_text(text).lower()


def agreement(client: rg.Argilla, dataset: str, workspace_name: str) -> Agreement:
    """WER/CER between annotators on the records two of them transcribed (the double-check dataset)."""
    ws = workspace(client, workspace_name)
    ds = client.datasets(name=dataset, workspace=ws)
    if ds is None:
        raise AnnotationError(f"dataset {dataset!r} not found in workspace {workspace_name!r}")
    query = rg.Query(filter=rg.Filter(("response.status", "==", "submitted")))
    refs, hyps, tr_refs, tr_hyps, records = [], [], [], [], 0
    for record in ds.records(query=query, with_responses=True, batch_size=500):
        answers: dict[str, dict] = {}
        for resp in record.responses:
            if str(getattr(resp.status, "value", resp.status)) == "submitted":
                answers.setdefault(str(resp.user_id), {})[resp.question_name] = resp.value
        if len(answers) < 2:
            continue
        records += 1
        for a, b in itertools.combinations(answers.values(), 2):
            if _norm(a.get("transcript")) and _norm(b.get("transcript")):
                refs.append(_norm(a["transcript"]))
                hyps.append(_norm(b["transcript"]))
            if _norm(a.get("translation")) and _norm(b.get("translation")):
                tr_refs.append(_norm(a["translation"]))
                tr_hyps.append(_norm(b["translation"]))
    if not refs:
        raise AnnotationError(f"no record of {dataset!r} has two submitted transcripts yet")
    return Agreement(
        records=records,
        pairs=len(refs),
        transcript_wer=jiwer.wer(refs, hyps),
        transcript_cer=jiwer.cer(refs, hyps),
        translation_wer=jiwer.wer(tr_refs, tr_hyps) if tr_refs else 0.0,
        identical_transcripts=sum(r == h for r, h in zip(refs, hyps)) / len(refs),
    )
