"""A **simulated** annotator for the offline demo: it stands in for a person so the factory runs end to end.

It signs in as its own Argilla user (``simulated-reviewer``, role annotator), reads the records and their
suggestions the way the UI does, and submits through the endpoint the UI posts to
(``POST /api/v1/records/{id}/responses``). It knows the synthetic corpus' ground truth (``truth.jsonl``): a suggestion
that matches the truth is accepted as is, one that does not is corrected to the truth (text, translation and the
boundaries), and a record over no true utterance is discarded as ``no_speech``. Real data needs real people: it
refuses the production dataset and workspace names (those ``vecs argilla push`` and ``pull`` use by default) and
any dataset holding a record of a video its synthetic corpus does not have, before it answers anything.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dataset_builder.foundation.text import clean_text

from .client import AnnotationError

REVIEWER = "simulated-reviewer"
#: Where the demo's records go: never the names real annotators work in.
DEMO_DATASET = "vecs-demo"
DEMO_WORKSPACE = "vecs-demo"
#: The names ``vecs argilla push`` / ``pull`` use by default: real annotators' work.
PRODUCTION_DATASETS = ("vecs-verify", "vecs-verify-double")
PRODUCTION_WORKSPACES = ("vecs",)


def check_not_production(dataset: str, workspace_name: str) -> None:
    """The simulated reviewer answers as if it were a person: never where people's answers are expected."""
    if dataset in PRODUCTION_DATASETS or workspace_name in PRODUCTION_WORKSPACES:
        raise AnnotationError(
            f"the simulated reviewer refuses the production dataset/workspace ({dataset!r} in {workspace_name!r}): "
            f"its answers would pass for human ones; push the demo to --dataset {DEMO_DATASET} "
            f"--workspace {DEMO_WORKSPACE}")


@dataclass
class ReviewReport:
    accepted: int = 0
    corrected: int = 0
    discarded: int = 0


def load_truth(corpus: Path) -> dict[str, list[dict]]:
    by_video: dict[str, list[dict]] = {}
    for line in (Path(corpus) / "truth.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            u = json.loads(line)
            by_video.setdefault(u["video_id"], []).append(u)
    return by_video


def match(utterances: list[dict], start: float, end: float, min_overlap: float = 0.5) -> dict | None:
    """The true utterance covering most of [start, end), if it covers at least ``min_overlap`` of either."""
    best, best_overlap = None, 0.0
    for u in utterances:
        overlap = min(end, u["end"]) - max(start, u["start"])
        if overlap > best_overlap:
            best, best_overlap = u, overlap
    if best is None or best_overlap < min_overlap * min(end - start, best["end"] - best["start"]):
        return None
    return best


def answer(utterances: list[dict], start: float, end: float, taken: set) -> tuple[dict, str]:
    """The response to a segment, and ``"answer"`` or ``"discard"``. A segment gets the true utterance it covers
    most, with its text and times; a second segment cut from the same utterance (captions split sentences) is
    discarded as a bad boundary, as an annotator who extended the first one to the whole utterance would: an
    utterance is verified once, never exported twice."""
    u = match(utterances, start, end)
    if u is None:
        return {"values": {"quality": {"value": "no_speech"}}, "status": "discarded"}, "discard"
    key = (u["start"], u["end"])
    if key in taken:
        return {"values": {"quality": {"value": "bad_boundaries"}}, "status": "discarded"}, "discard"
    taken.add(key)
    return {"values": {"transcript": {"value": u["transcript"]},
                       "translation": {"value": u.get("translation") or u["transcript"]},
                       "quality": {"value": "ok"},
                       "corrected_start": {"value": f"{u['start']:.3f}"},
                       "corrected_end": {"value": f"{u['end']:.3f}"}},
            "status": "submitted"}, "answer"


def reviewer_key(client, home: Path, workspace_name: str) -> str:
    """The simulated reviewer's API key: created once (as an annotator of ``workspace_name``), kept owner-only."""
    from dataset_builder.foundation.atomic import private_dir, write_text_atomic

    from .team import add_user

    path = Path(home) / "argilla" / f"{REVIEWER}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))["api_key"]
    user = add_user(client, REVIEWER, "annotator", workspace_name)
    private_dir(path.parent)  # 0600 in a 0700 folder from the first byte: no moment another user can read it
    write_text_atomic(path, json.dumps({"username": user.username, "api_key": user.api_key}) + "\n", mode=0o600)
    return user.api_key


def _check_synthetic(http, dataset_id, pending: dict, truth: dict, dataset: str) -> None:
    """Every record in the queue must be of a video of the synthetic corpus, or nothing is answered."""
    offset = 0
    while True:
        page = http.post(f"/api/v1/me/datasets/{dataset_id}/records/search", json=pending,
                         params={"limit": 200, "offset": offset})
        if page.status_code >= 400:
            raise AnnotationError(f"dataset {dataset!r}: the review queue cannot be read ({page.status_code})")
        items = [item["record"] for item in page.json()["items"]]
        for record in items:
            video = (record.get("metadata") or {}).get("video_id")
            if video not in truth:
                raise AnnotationError(f"dataset {dataset!r} holds records of video {video!r}, which is not in the "
                                      "synthetic corpus: the simulated reviewer answers only its own synthetic data")
        if len(items) < 200:
            return
        offset += len(items)


def review(api_url: str, api_key: str, truth: dict[str, list[dict]], *, dataset: str = DEMO_DATASET,
           workspace_name: str = DEMO_WORKSPACE, progress: bool = True) -> ReviewReport:
    from tqdm.auto import tqdm

    from .client import connect

    check_not_production(dataset, workspace_name)
    client = connect(api_url, api_key)  # signed in as the reviewer, not the owner
    ds = client.datasets(name=dataset, workspace=workspace_name)
    if ds is None:
        raise AnnotationError(f"dataset {dataset!r} not found in workspace {workspace_name!r} for {REVIEWER}")
    report = ReviewReport()
    http = client.http_client
    pending = {"filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                    "values": ["pending"]}]}}
    questions = {q["id"]: q["name"] for q in http.get(f"/api/v1/datasets/{ds.id}/questions").json()["items"]}
    _check_synthetic(http, ds.id, pending, truth, dataset)
    bar = tqdm(desc="simulated review", unit="record", disable=not progress)
    taken: dict[str, set] = {}  # per video: the true utterances already answered
    while True:  # the annotator's queue, as the UI reads it: answered records leave it
        page = http.post(f"/api/v1/me/datasets/{ds.id}/records/search", json=pending,
                         params={"include": "suggestions", "limit": 100})
        if page.status_code >= 400:
            raise AnnotationError(f"dataset {dataset!r}: the review queue cannot be read ({page.status_code})")
        items = [item["record"] for item in page.json()["items"]]
        if not items:
            break
        bar.total = bar.n + page.json().get("total", len(items))
        for record in items:
            suggested = {questions.get(s["question_id"]): s["value"] for s in record.get("suggestions") or []}
            meta = record.get("metadata") or {}
            start = float(meta["start"])
            body, kind = answer(truth.get(meta["video_id"], []), start, start + float(meta["duration"]),
                                taken.setdefault(meta["video_id"], set()))
            resp = http.post(f"/api/v1/records/{record['id']}/responses", json=body)
            if resp.status_code >= 400:
                raise AnnotationError(f"record {record.get('external_id')}: response refused "
                                      f"({resp.status_code}: {resp.text[:200]})")
            if kind == "discard":
                report.discarded += 1
            elif clean_text(suggested.get("transcript")) == clean_text(body["values"]["transcript"]["value"]):
                report.accepted += 1
            else:
                report.corrected += 1
            bar.update()
    bar.close()
    return report
