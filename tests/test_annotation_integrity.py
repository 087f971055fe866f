"""Annotation under races: answers given while a push runs are never overwritten, a clip follows its segment's
boundaries, and the simulated reviewer never touches production data."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest
import soundfile as sf
from sqlalchemy import select

from annotation.client import AnnotationError, connect
from annotation.push import push
from annotation.team import add_user
from conftest import labeled_store, make_wav, run_vecs, synthetic_corpus
from dataset_builder.store import Segment, session_scope


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthetic_corpus(tmp_path_factory, "ann-int-corpus", videos=1, minutes=1.5, seed=23)


@pytest.fixture
def labeled(settings, corpus, argilla_server):
    assert labeled_store(settings, corpus, argilla_server).failed == 0
    return settings


def test_an_answer_given_during_a_push_is_not_overwritten(labeled, argilla_server):
    settings = labeled
    client = connect(argilla_server.url, argilla_server.api_key)
    name = f"race-{uuid.uuid4().hex[:6]}"
    base = settings.extra["audio_base"]
    first = push(settings, client, dataset=name, workspace_name="vecs-test", audio_base_url=base,
                 create_workspace=True)
    assert first.created >= 6
    with session_scope(settings) as s:  # the pre-labels of six records change (a re-run of the pre-labeler)
        changed = s.scalars(select(Segment).where(Segment.record_id.is_not(None)).order_by(Segment.id)).all()[:6]
        for seg in changed:
            seg.text += " (sửa)"
        late = changed[-1].record_id
    records = {str(r.id): r for r in client.datasets(name=name, workspace="vecs-test").records()}
    user = add_user(client, f"ann-{uuid.uuid4().hex[:5]}", "annotator", "vecs-test")
    rest = httpx.Client(base_url=argilla_server.url, headers={"X-Argilla-Api-Key": user.api_key}, timeout=30)
    answered = []

    def annotator_answers(_done: int) -> None:  # while the push runs, someone submits the last changed record
        if not answered:
            resp = rest.post(f"/api/v1/records/{records[late]._server_id}/responses", json={
                "values": {"transcript": {"value": "câu người nghe và sửa"}, "translation": {"value": "câu đã dịch"},
                           "quality": {"value": "ok"}},
                "status": "submitted"})
            assert resp.status_code in (200, 201), resp.text
            answered.append(late)

    again = push(settings, client, dataset=name, workspace_name="vecs-test", audio_base_url=base, batch_size=1,
                 on_batch=annotator_answers)
    assert answered and again.skipped_answered == 1 and again.updated == 5
    fresh = {str(r.id): r for r in client.datasets(name=name, workspace="vecs-test").records(with_suggestions=True)}
    assert not fresh[late].suggestions["transcript"].value.endswith("(sửa)")
    assert all(fresh[seg.record_id].suggestions["transcript"].value.endswith("(sửa)") for seg in changed[:-1])


def test_a_clip_follows_its_segments_boundaries(tmp_path):
    from annotation.clips import make_clip

    audio = tmp_path / "v.wav"
    make_wav(audio, 30, seed=3)
    first = make_clip(tmp_path / "home", audio, "v", "v-c0000-0010000", 10.0, 12.0, 30.0)
    assert sf.info(str(first.path)).duration == pytest.approx(4.0, abs=0.01)
    moved = make_clip(tmp_path / "home", audio, "v", "v-c0000-0010000", 10.0, 16.0, 30.0)
    assert sf.info(str(moved.path)).duration == pytest.approx(8.0, abs=0.01), "a stale clip was reused"
    assert moved.relpath != first.relpath  # a new URL: no browser plays the old one from its cache
    assert sf.info(str(first.path)).duration == pytest.approx(4.0, abs=0.01)  # kept for records answered on it


@pytest.mark.parametrize("names", [[], ["--dataset", "vecs-verify"], ["--workspace", "vecs"],
                                   ["--dataset", "vecs-verify-double", "--workspace", "team"]])
def test_the_simulated_reviewer_refuses_production_names(tmp_path, names):
    (tmp_path / "truth.jsonl").write_text("")
    defaults = [] if names else ["--dataset", "vecs-verify"]
    proc = run_vecs("argilla", "simulate-review", "--corpus", str(tmp_path), *defaults, *names,
                    env={"ARGILLA_API_KEY": "", "ARGILLA_API_URL": "http://127.0.0.1:9"})
    assert proc.returncode != 0 and "production" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_simulated_reviewer_refuses_a_dataset_of_real_videos(labeled, argilla_server, tmp_path):
    """Whatever the names, it answers nothing in a dataset holding videos its synthetic truth does not know."""
    from annotation.reviewer import review, reviewer_key

    settings = labeled
    client = connect(argilla_server.url, argilla_server.api_key)
    name = f"real-{uuid.uuid4().hex[:6]}"
    push(settings, client, dataset=name, workspace_name="vecs-test", audio_base_url=settings.extra["audio_base"],
         create_workspace=True)
    key = reviewer_key(client, tmp_path / "rhome", "vecs-test")
    truth = {"some-other-video": [{"start": 0.0, "end": 1.0, "transcript": "x", "translation": "x"}]}
    with pytest.raises(AnnotationError, match="not in the synthetic corpus"):
        review(argilla_server.url, key, truth, dataset=name, workspace_name="vecs-test", progress=False)
    ds = client.datasets(name=name, workspace="vecs-test")
    import argilla as rg

    answered = list(ds.records(query=rg.Query(filter=rg.Filter(("response.status", "in", ["submitted", "discarded"])))))
    assert answered == []
    assert json.loads((tmp_path / "rhome" / "argilla" / "simulated-reviewer.json").read_text())["api_key"] == key


def test_a_push_killed_while_creating_its_dataset_resumes(labeled, argilla_server):
    """Creating a dataset takes several requests (the draft, its fields and questions, publishing): a push killed
    in between leaves a draft with half its questions, which the next push must not log records into."""
    import argilla as rg

    from annotation.design import dataset_settings

    settings = labeled
    client = connect(argilla_server.url, argilla_server.api_key)
    name = f"draft-{uuid.uuid4().hex[:6]}"
    ws = client.workspaces("vecs-test") or rg.Workspace(name="vecs-test", client=client).create()
    draft = rg.Dataset(name=name, workspace=ws, settings=dataset_settings(1), client=client)
    draft._api.create(draft.api_model())  # the first request of Dataset.create(), then the kill
    report = push(settings, client, dataset=name, workspace_name="vecs-test", audio_base_url=settings.extra["audio_base"])
    assert report.created > 0
    ds = client.datasets(name=name, workspace="vecs-test")
    assert len(list(ds.records())) == report.created


def test_the_simulated_reviewer_verifies_an_utterance_once_when_captions_split_it():
    """Two segments cut from one utterance (a caption line break mid-sentence): the first is extended to the whole
    utterance, the second discarded as a bad boundary — never the same audio exported twice."""
    from annotation.reviewer import answer

    truth = [{"start": 10.0, "end": 16.0, "transcript": "hôm nay tụi mình sẽ kể cho các bạn nghe một câu chuyện"},
             {"start": 17.0, "end": 19.0, "transcript": "okay, let's get started"}]
    taken: set = set()
    first, kind1 = answer(truth, 10.0, 13.0, taken)
    second, kind2 = answer(truth, 13.0, 16.0, taken)
    other, kind3 = answer(truth, 17.0, 19.0, taken)
    silence, kind4 = answer(truth, 30.0, 32.0, taken)
    assert (kind1, kind2, kind3, kind4) == ("answer", "discard", "answer", "discard")
    assert first["values"]["corrected_start"]["value"] == "10.000" and first["values"]["corrected_end"]["value"] == "16.000"
    assert second["values"]["quality"]["value"] == "bad_boundaries" and second["status"] == "discarded"
    assert other["values"]["transcript"]["value"] == "okay, let's get started"
    assert silence["values"]["quality"]["value"] == "no_speech"
