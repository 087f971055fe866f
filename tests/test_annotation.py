"""Annotation round trip on a real argilla-server: push → an annotator answers through the UI's REST API →
pull → the verified text is in the store. Plus re-push semantics, bad input and workspace isolation."""
from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select

from annotation.client import AnnotationError, connect
from conftest import labeled_store, synthetic_corpus
from annotation.pull import pull
from annotation.push import push
from annotation.team import add_user, agreement
from dataset_builder.guillotine import SegmentView, resolve
from dataset_builder.store import Chunk, ChunkStatus, Segment, Video, session_scope


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthetic_corpus(tmp_path_factory, "ann-corpus", videos=2, minutes=5.2, seed=21)


@pytest.fixture
def labeled(settings, corpus, argilla_server):
    """A store with two pre-labeled videos (captions engine), two chunks each."""
    run = labeled_store(settings, corpus, argilla_server)
    assert run.done == 4
    return settings


def _kept_count(settings) -> int:
    with session_scope(settings) as s:
        total = 0
        for video in s.scalars(select(Video)).all():
            views = [SegmentView(seg, c.index, c.start, c.end, c.is_last, seg.start, seg.end)
                     for c in video.chunks for seg in c.segments]
            total += len(resolve(views).kept)
        return total


def _rest(server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Argilla-Api-Key": key}, timeout=30)


def test_push_answer_pull_round_trip(labeled, argilla_server):
    settings = labeled
    client = connect(argilla_server.url, argilla_server.api_key)
    name = f"verify-{uuid.uuid4().hex[:6]}"
    report = push(settings, client, dataset=name, workspace_name="vecs-test", audio_base_url=settings.extra["audio_base"],
                  create_workspace=True, double_check=0.2, batch_size=50)
    kept = _kept_count(settings)
    assert report.created == kept and report.updated == 0 and report.batches >= 2
    ds = client.datasets(name=name, workspace="vecs-test")
    records = list(ds.records(with_suggestions=True))
    assert len(records) == kept
    # the overlap-zone copies were not pushed: no two records cover the same stretch of audio
    spans = sorted((r.metadata["video_id"], r.metadata["start"], r.metadata["start"] + r.metadata["duration"])
                   for r in records)
    assert all(a[0] != b[0] or a[2] <= b[1] + 1e-6 for a, b in zip(spans, spans[1:]))
    # suggestions name the pre-labeler; the audio clip is reachable where the player will fetch it
    first = records[0]
    assert {s.question_name for s in first.suggestions} >= {"transcript", "corrected_start", "corrected_end"}
    assert first.suggestions["transcript"].agent.startswith("captions")
    clip = httpx.get(first.fields["audio"]["src"], headers={"Range": "bytes=0-99"}, timeout=10)
    assert clip.status_code == 206 and len(clip.content) == 100
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).where(Chunk.status == ChunkStatus.PUSHED)) == 4

    # re-push: nothing new, nothing duplicated
    again = push(settings, client, dataset=name, workspace_name="vecs-test", audio_base_url=settings.extra["audio_base"])
    assert again.created == again.updated == 0 and again.unchanged == kept
    assert len(list(client.datasets(name=name, workspace="vecs-test").records())) == kept

    # an annotator answers two records through the REST API the UI uses
    user = add_user(client, f"ann-{uuid.uuid4().hex[:5]}", "annotator", "vecs-test")
    rest = _rest(argilla_server, user.api_key)
    answered = records[:2]
    for i, rec in enumerate(answered):
        values = {"transcript": {"value": f"đã sửa {i}: mình có một meeting"},
                  "translation": {"value": "mình có một cuộc họp"}, "quality": {"value": "ok"}}
        if i == 1:
            values["corrected_start"] = {"value": "12.5"}
        resp = rest.post(f"/api/v1/records/{rec._server_id}/responses", json={"values": values, "status": "submitted"})
        assert resp.status_code in (200, 201), resp.text
    report = pull(settings, client, dataset=name, workspace_name="vecs-test")
    assert report.verified == 2 and report.unknown == 0
    with session_scope(settings) as s:
        got = {seg.record_id: seg for seg in s.scalars(select(Segment).where(Segment.verified)).all()}
    assert got[str(answered[0].id)].verified_text == "đã sửa 0: mình có một meeting"
    assert got[str(answered[1].id)].verified_start == 12.5
    assert got[str(answered[0].id)].annotator == user.username
    assert pull(settings, client, dataset=name, workspace_name="vecs-test").unchanged == 2  # incremental

    # a re-push after the pre-label changed leaves the answered record alone and updates the others
    with session_scope(settings) as s:
        for seg in s.scalars(select(Segment).where(Segment.record_id.in_([str(r.id) for r in records[:3]]))):
            seg.text = seg.text + " (sửa)"
    third = push(settings, client, dataset=name, workspace_name="vecs-test", audio_base_url=settings.extra["audio_base"])
    assert third.skipped_answered == 2 and third.updated == 1
    fresh = {str(r.id): r for r in client.datasets(name=name, workspace="vecs-test").records(with_suggestions=True)}
    assert not fresh[str(records[0].id)].suggestions["transcript"].value.endswith("(sửa)")
    assert fresh[str(records[2].id)].suggestions["transcript"].value.endswith("(sửa)")


def test_agreement_on_double_annotated_records(labeled, argilla_server):
    client = connect(argilla_server.url, argilla_server.api_key)
    name = f"agree-{uuid.uuid4().hex[:6]}"
    push(labeled, client, dataset=name, workspace_name="vecs-test", audio_base_url=labeled.extra["audio_base"],
         create_workspace=True, double_check=1.0)
    double = client.datasets(name=f"{name}-double", workspace="vecs-test")
    recs = list(double.records())[:3]
    a = add_user(client, f"a-{uuid.uuid4().hex[:5]}", "annotator", "vecs-test")
    b = add_user(client, f"b-{uuid.uuid4().hex[:5]}", "annotator", "vecs-test")
    for user, texts in ((a, ["một hai ba", "xin chào team", "deadline thứ sáu"]),
                        (b, ["một hai ba", "xin chào team nha", "deadline thứ bảy"])):
        rest = _rest(argilla_server, user.api_key)
        for rec, text in zip(recs, texts):
            r = rest.post(f"/api/v1/records/{rec._server_id}/responses", json={
                "values": {"transcript": {"value": text}, "translation": {"value": text}, "quality": {"value": "ok"}},
                "status": "submitted"})
            assert r.status_code in (200, 201), r.text
    result = agreement(client, f"{name}-double", "vecs-test")
    assert result.records == 3 and result.pairs == 3
    assert result.identical_transcripts == pytest.approx(1 / 3)
    assert result.transcript_wer == pytest.approx(2 / 9)  # one insertion, one substitution over 9 words


def test_bad_input_is_one_clear_line(labeled, argilla_server, tmp_path):
    with pytest.raises(AnnotationError, match="rejected the API key"):
        connect(argilla_server.url, "not-a-key")
    with pytest.raises(AnnotationError, match="cannot reach Argilla at http://127.0.0.1:9"):
        connect("http://127.0.0.1:9", "whatever")
    client = connect(argilla_server.url, argilla_server.api_key)
    with pytest.raises(AnnotationError, match="workspace 'nope' does not exist"):
        push(labeled, client, dataset="x", workspace_name="nope", audio_base_url=labeled.extra["audio_base"])
    # a video whose audio is gone is skipped and reported; the others are pushed
    with session_scope(labeled) as s:
        video = s.scalars(select(Video).order_by(Video.id)).first()
        (labeled.home / video.audio_path).unlink()
        gone = video.video_id
    report = push(labeled, client, dataset=f"miss-{uuid.uuid4().hex[:6]}", workspace_name="vecs-test",
                  audio_base_url=labeled.extra["audio_base"], create_workspace=True)
    assert report.missing_audio == [gone] and report.created > 0


def test_annotator_cannot_reach_another_workspace(labeled, argilla_server):
    client = connect(argilla_server.url, argilla_server.api_key)
    secret = f"secret-{uuid.uuid4().hex[:6]}"
    push(labeled, client, dataset=secret, workspace_name=f"other-{uuid.uuid4().hex[:4]}",
         audio_base_url=labeled.extra["audio_base"], create_workspace=True)
    ds = [d for d in client.datasets if d.name == secret][0]
    record = next(iter(ds.records()))
    user = add_user(client, f"iso-{uuid.uuid4().hex[:5]}", "annotator", "vecs-test", create_workspace=True)
    rest = _rest(argilla_server, user.api_key)
    assert rest.get(f"/api/v1/datasets/{ds.id}").status_code in (403, 404)
    assert rest.post(f"/api/v1/datasets/{ds.id}/records/search", json={}).status_code in (403, 404)
    write = rest.post(f"/api/v1/records/{record._server_id}/responses",
                      json={"values": {"transcript": {"value": "x"}}, "status": "submitted"})
    assert write.status_code in (403, 404)
    names = [d["name"] for d in rest.get("/api/v1/me/datasets").json()["items"]]
    assert secret not in names


def test_annotator_in_the_browser(labeled, argilla_server):
    """Chromium: sign in as an annotator, open the dataset, play the clip, correct a suggestion, submit;
    the pull sees it. Screenshots are kept in test-artifacts/."""
    import shutil

    from conftest import ARTIFACTS, CHROMIUM_ARGS

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    settings = labeled
    client = connect(argilla_server.url, argilla_server.api_key)
    name = f"ui-{uuid.uuid4().hex[:6]}"
    push(settings, client, dataset=name, workspace_name="vecs-ui", audio_base_url=settings.extra["audio_base"],
         create_workspace=True)
    user = add_user(client, f"ui-{uuid.uuid4().hex[:5]}", "annotator", "vecs-ui")
    shots = ARTIFACTS / "annotation"
    shots.mkdir(parents=True, exist_ok=True)
    corrected = "mình sửa lại câu này cho đúng nha"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(f"{argilla_server.url}/sign-in", wait_until="networkidle")
        page.fill("input[name=Username]", user.username)
        page.fill("input[name=Password]", user.password)
        page.click("button:has-text('Sign in')")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots / "1-home.png"))
        page.click(f"text={name}")
        page.wait_for_selector("[contenteditable]")
        frame = next(f for f in page.frames if f.url == "about:srcdoc")
        frame.wait_for_selector("#vecs-audio")
        frame.click("#vecs-play-seg")  # the player's own "play the segment" button, a user gesture
        frame.wait_for_function("document.getElementById('vecs-audio').currentTime > 0.3", timeout=15000)
        state = frame.evaluate("(() => { const a = document.getElementById('vecs-audio');"
                               " return {err: a.error && a.error.code, dur: a.duration, src: a.src}; })()")
        assert state["err"] is None and state["dur"] > 0.5 and state["src"].endswith(".ogg")
        meta = frame.inner_text("#vecs-meta")  # "<video_id> · <start>–<end> s" of the record on screen
        page.screenshot(path=str(shots / "2-record.png"))
        editors = page.query_selector_all("[contenteditable]")
        editors[0].click()
        page.keyboard.press("Control+A")
        page.keyboard.type(corrected)
        editors[1].click()
        page.keyboard.type("mình sửa lại câu này cho đúng nha")
        # the quality label: "text=OK" would match any text containing "ok" (a "MacBook" in the transcript)
        page.get_by_text("OK", exact=True).first.click()
        page.wait_for_selector("button.button--submit:not([disabled])", timeout=15000)
        page.screenshot(path=str(shots / "3-edited.png"))
        page.click("button:has-text('Submit')")
        page.wait_for_function("document.body.innerText.includes('Submitted')", timeout=15000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "4-submitted.png"))
        browser.close()
    report = pull(settings, client, dataset=name, workspace_name="vecs-ui")
    assert report.verified == 1
    with session_scope(settings) as s:
        seg = s.scalars(select(Segment).where(Segment.verified)).one()
        assert seg.verified_text == corrected and seg.quality == "ok" and seg.annotator == user.username
        assert seg.record_id.startswith(meta.split(" · ")[0])
