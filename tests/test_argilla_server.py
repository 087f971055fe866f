"""The local Argilla: launcher (`vecs argilla serve`), clip server, and the vecs-sql search engine driven
through the real argilla 2.8 SDK and the REST routes the UI uses — on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest

from annotation.server import launcher
from annotation.server.audio import parse_range
from tests.conftest import ArgillaServer, free_port_pair, run_vecs, start_argilla

N = 240
WORDS = ["alpha", "deadline", "check", "email", "project"]


def auth(key: str) -> dict:
    """Owner API keys go in X-Argilla-Api-Key; annotators log in like the UI and send a bearer token."""
    if key.startswith("vecs.owner."):
        return {"X-Argilla-Api-Key": key}
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------------------------------------------------
# Launcher


def _alive(pid: int) -> bool:
    return launcher.pid_alive(pid)


def test_serve_cli_lifecycle_keeps_data(tmp_path):
    """serve → serve again (prints the URL, starts nothing) → --stop (everything gone) → serve (same data)."""
    try:
        launcher.check_server_venv()
    except launcher.LaunchError as exc:
        pytest.skip(str(exc))
    home = tmp_path / "home"
    port = free_port_pair()
    env = {"VECS_HOME": str(home)}
    t0 = time.monotonic()
    first = run_vecs("argilla", "serve", "--port", str(port), env=env, timeout=300)
    assert first.returncode == 0, first.stderr + first.stdout
    started = time.monotonic() - t0
    url = f"http://127.0.0.1:{port}"
    assert f"Argilla: {url}" in first.stdout
    assert f"clips: http://127.0.0.1:{port + 1}/" in first.stdout
    creds = json.loads((home / "argilla" / "owner.json").read_text())
    assert (home / "argilla" / "owner.json").stat().st_mode & 0o777 == 0o600
    assert creds["username"] == "vecs-owner"
    assert creds["api_key"] in first.stdout  # printed once, for the user
    state = json.loads((home / "argilla" / "server.json").read_text())
    assert creds["api_key"] not in json.dumps(state) and creds["password"] not in json.dumps(state)
    for log in (home / "argilla" / "logs").glob("*.log"):
        assert creds["api_key"] not in log.read_text(errors="replace"), log
    assert set(state["pids"]) == {"redis", "audio", "worker", "server"}
    assert state["audio_url"] == f"http://127.0.0.1:{port + 1}/"  # what `vecs argilla push` reads
    print(f"vecs argilla serve (CLI) started in {started:.1f} s")

    status = httpx.get(f"{url}/api/v1/status", timeout=10).json()
    assert status["search_engine"]["name"] == "vecs-sql"
    me = httpx.get(f"{url}/api/v1/me", headers=auth(creds["api_key"]), timeout=10).json()
    assert me["username"] == "vecs-owner" and me["role"] == "owner"
    ws = httpx.post(f"{url}/api/v1/workspaces", json={"name": "kept"}, headers=auth(creds["api_key"]), timeout=10)
    assert ws.status_code == 201, ws.text
    token = httpx.post(f"{url}/api/v1/token", data={"username": "vecs-owner", "password": creds["password"]},
                       timeout=10).json()["access_token"]  # a UI login

    t0 = time.monotonic()
    again = run_vecs("argilla", "serve", "--port", str(port), env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and url in again.stdout
    assert creds["api_key"] not in again.stdout
    assert time.monotonic() - t0 < 15
    assert json.loads((home / "argilla" / "server.json").read_text())["pids"] == state["pids"]

    stopped = run_vecs("argilla", "serve", "--stop", env=env, timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    for pid in state["pids"].values():
        assert not _alive(pid)
    assert launcher.port_free("127.0.0.1", port) and launcher.port_free("127.0.0.1", port + 1)
    assert not (home / "argilla" / "tmp").exists()  # the UI copies are gone
    assert "not running" in run_vecs("argilla", "serve", "--stop", env=env).stderr

    again = run_vecs("argilla", "serve", "--port", str(port), env=env, timeout=300)
    try:
        assert again.returncode == 0, again.stderr + again.stdout
        names = [w["name"] for w in
                 httpx.get(f"{url}/api/v1/me/workspaces", headers=auth(creds["api_key"]), timeout=10).json()["items"]]
        assert "kept" in names
        # the session key persists: a UI login outlives the restart
        assert httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
        assert json.loads((home / "argilla" / "owner.json").read_text()) == creds
    finally:
        launcher.stop(home)


def test_serve_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("VECS_ARGILLA_VENV", str(tmp_path / "nowhere"))
    with pytest.raises(launcher.LaunchError, match="run make setup"):
        launcher.serve(tmp_path / "h1", port=free_port_pair())
    monkeypatch.delenv("VECS_ARGILLA_VENV")
    try:
        launcher.check_server_venv()
    except launcher.LaunchError as exc:
        pytest.skip(str(exc))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(launcher.LaunchError, match=f"port {port} on 127.0.0.1 is in use"):
            launcher.serve(tmp_path / "h2", port=port)
    # through the CLI: one line on stderr, exit code 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_vecs("argilla", "serve", "--port", str(port), env={"VECS_HOME": str(tmp_path / "h3")})
        assert r.returncode == 1 and "is in use" in r.stderr and "Traceback" not in r.stderr


def test_serve_reports_a_child_that_dies(tmp_path):
    """A server that cannot start (its database is unreachable) → an error quoting its log; nothing left."""
    try:
        launcher.check_server_venv()
    except launcher.LaunchError as exc:
        pytest.skip(str(exc))
    dead = launcher.free_port()
    with pytest.raises(launcher.LaunchError) as err:
        launcher.serve(tmp_path / "h", port=free_port_pair(),
                       database_url=f"postgresql://nobody@127.0.0.1:{dead}/none", timeout=120)
    msg = str(err.value)
    assert msg.startswith("server exited with code") and "server.log" in msg
    assert "Connect" in msg or "refused" in msg  # the tail of the log says why
    state = json.loads((tmp_path / "h" / "argilla" / "server.json").read_text())
    assert "pids" not in state
    assert launcher.status(tmp_path / "h") is None


def test_database_url_translation(tmp_path):
    assert launcher.argilla_database_url(None, tmp_path) == f"sqlite+aiosqlite:///{tmp_path}/argilla.db"
    assert launcher.argilla_database_url("postgresql+psycopg://u:p@h/db", tmp_path) == "postgresql+asyncpg://u:p@h/db"
    assert launcher.argilla_database_url("postgresql://u@h/db", tmp_path) == "postgresql+asyncpg://u@h/db"
    assert launcher.redact_url("postgresql+asyncpg://u:secret@h/db") == "postgresql+asyncpg://u:***@h/db"


# ---------------------------------------------------------------------------------------------------------
# Clip server


def test_parse_range():
    assert parse_range("bytes=0-99", 1000) == (0, 99)
    assert parse_range("bytes=900-", 1000) == (900, 999)
    assert parse_range("bytes=-100", 1000) == (900, 999)
    assert parse_range("bytes=990-2000", 1000) == (990, 999)
    assert parse_range("bytes=1000-", 1000) == "unsatisfiable"
    assert parse_range("bytes=5-2", 1000) == "unsatisfiable"
    assert parse_range("bytes=0-1,5-6", 1000) is None  # multi-range: whole file
    assert parse_range("items=0-1", 1000) is None


def test_clip_server_ranges_and_cors(argilla_server: ArgillaServer):
    data = os.urandom(100_000)
    clip = argilla_server.audio_dir / "vid 1" / "seg-0001.flac"
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(data)
    url = argilla_server.audio_url + "vid%201/seg-0001.flac"
    ui = {"Origin": argilla_server.url}  # the Argilla UI's page; no other origin may read clips
    with httpx.Client(timeout=10) as c:
        full = c.get(url, headers=ui)
        assert full.status_code == 200 and full.content == data
        assert full.headers["access-control-allow-origin"] == argilla_server.url
        assert full.headers["accept-ranges"] == "bytes" and full.headers["content-type"] == "audio/flac"
        part = c.get(url, headers={"Range": "bytes=1000-1999", **ui})
        assert part.status_code == 206 and part.content == data[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
        assert "Content-Range" in part.headers["access-control-expose-headers"]
        tail = c.get(url, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        open_end = c.get(url, headers={"Range": "bytes=99990-"})
        assert open_end.content == data[99990:]
        bad = c.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(data)}"
        head = c.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and not head.content
        pre = c.options(url, headers={**ui, "Access-Control-Request-Headers": "range"})
        assert pre.status_code == 204 and "Range" in pre.headers["access-control-allow-headers"]
        assert c.get(argilla_server.audio_url + "..%2F..%2Fargilla%2Fowner.json").status_code == 404
        assert c.get(argilla_server.audio_url + "missing.flac").status_code == 404
        assert c.get(argilla_server.audio_url).status_code == 404  # no listings


# ---------------------------------------------------------------------------------------------------------
# The search engine, through the SDK and the UI's REST routes, on SQLite and PostgreSQL


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request, argilla_server, tmp_path_factory):
    if request.param == "sqlite":
        yield argilla_server
        return
    pg = request.getfixturevalue("postgres_url")
    import psycopg

    name = f"argilla_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    home = tmp_path_factory.mktemp("argilla-pg-home")
    server = start_argilla(home, database_url=pg.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield server
    finally:
        launcher.stop(home)


def _expected(i: int) -> dict:
    md = {"channel": "abc"[i % 3], "n": i, "langs": ["vi"] if i % 4 == 0 else ["vi", "en"]}
    if i % 10 != 9:  # some records have no duration: they sort last either way
        md["duration"] = (i * 37 % N) / 10
    return {
        "transcript": f"mình có một meeting số {i} với team {WORDS[i % 5]}",
        "translation": f"tôi có một cuộc họp số {i} với nhóm",
        "metadata": md,
        "quality": "good" if i % 2 else "bad",
        "score": (i % 100) / 100,
        "agent": "gemini" if i % 3 else "captions",
    }


@pytest.fixture(scope="module")
def corpus(backend: ArgillaServer):
    import argilla as rg

    client = backend.client()
    ws = rg.Workspace(name=f"ws-{uuid.uuid4().hex[:6]}", client=client).create()
    settings = rg.Settings(
        fields=[rg.TextField(name="transcript"), rg.TextField(name="translation")],
        questions=[rg.TextQuestion(name="corrected", required=False),
                   rg.LabelQuestion(name="quality", labels=["good", "bad"])],
        metadata=[rg.TermsMetadataProperty(name="channel"), rg.FloatMetadataProperty(name="duration"),
                  rg.IntegerMetadataProperty(name="n"), rg.TermsMetadataProperty(name="langs")],
        vectors=[rg.VectorField(name="emb", dimensions=2)],
    )
    ds = rg.Dataset(name="search", workspace=ws, settings=settings, client=client).create()
    records = []
    for i in range(N):
        e = _expected(i)
        records.append(rg.Record(
            id=f"r{i:03d}", fields={"transcript": e["transcript"], "translation": e["translation"]},
            metadata=e["metadata"],
            suggestions=[rg.Suggestion("quality", e["quality"], score=e["score"], agent=e["agent"])],
        ))
    t0 = time.monotonic()
    ds.records.log(records, batch_size=N)
    print(f"logged {N} records in {time.monotonic() - t0:.1f} s")

    listed = httpx.get(f"{backend.url}/api/v1/datasets/{ds.id}/records", params={"limit": 1000},
                       headers=auth(backend.api_key), timeout=30).json()["items"]
    server_ids = {r["external_id"]: r["id"] for r in listed}
    assert len(server_ids) == N

    tokens = {}
    for name in ("ann1", "ann2"):
        user = rg.User(username=f"{name}-{ws.name}", password="annotator-pass-1", role="annotator",
                       client=client).create()
        user.add_to_workspace(ws)
        tok = httpx.post(f"{backend.url}/api/v1/token",
                         data={"username": user.username, "password": "annotator-pass-1"}, timeout=30)
        tokens[name] = tok.json()["access_token"]

    def respond(who: str, i: int, status: str, value: str | None = None):
        body = {"status": status}
        if status != "discarded":
            body["values"] = {"quality": {"value": value or ("good" if i % 2 == 0 else "bad")}}
        r = httpx.post(f"{backend.url}/api/v1/records/{server_ids[f'r{i:03d}']}/responses", json=body,
                       headers=auth(tokens[who]), timeout=30)
        assert r.status_code == 201, r.text

    # ann1: submitted 0-9, discarded 10-11, draft 12; ann2: submitted 5-14
    for i in range(10):
        respond("ann1", i, "submitted")
    for i in (10, 11):
        respond("ann1", i, "discarded")
    respond("ann1", 12, "draft")
    for i in range(5, 15):
        respond("ann2", i, "submitted", "good")
    return SimpleNamespace(server=backend, ds=ds, id=str(ds.id), tokens=tokens, ids=server_ids, client=client)


def search(corpus, body: dict, key: str | None = None, me: bool = False, offset: int = 0, limit: int = 1000):
    """(external ids in order, total) from the owner's search route or the UI's /me route."""
    srv = corpus.server
    path = f"/api/v1/me/datasets/{corpus.id}/records/search" if me else f"/api/v1/datasets/{corpus.id}/records/search"
    r = httpx.post(srv.url + path, json=body, params={"offset": offset, "limit": limit,
                                                        "include": ["responses", "suggestions"]},
                   headers=auth(key or srv.api_key), timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()
    return [it["record"]["external_id"] for it in data["items"]], data["total"]


def ids(pred) -> set[str]:
    return {f"r{i:03d}" for i in range(N) if pred(i)}


def terms(scope: dict, values: list) -> dict:
    return {"type": "terms", "scope": scope, "values": values}


def rng(scope: dict, ge=None, le=None) -> dict:
    f = {"type": "range", "scope": scope}
    if ge is not None:
        f["ge"] = ge
    if le is not None:
        f["le"] = le
    return f


MD = lambda name: {"entity": "metadata", "metadata_property": name}  # noqa: E731


def test_status_names_the_engine(corpus):
    st = httpx.get(corpus.server.url + "/api/v1/status", timeout=10).json()["search_engine"]
    assert st["name"] == "vecs-sql" and st["database"] in ("sqlite", "postgresql")


def test_text_query(corpus):
    import argilla as rg

    got, total = search(corpus, {"query": {"text": {"q": "meeting 12"}}})
    assert set(got) == ids(lambda i: "12" in str(i)) and total == len(got)
    got, _ = search(corpus, {"query": {"text": {"q": "cuộc họp 7"}}})  # Vietnamese, stored as \u escapes
    assert set(got) == ids(lambda i: "7" in str(i))
    got, _ = search(corpus, {"query": {"text": {"q": "MEETING"}}})  # case-insensitive
    assert len(got) == N
    assert search(corpus, {"query": {"text": {"q": "Mình"}}})[1] == N
    assert search(corpus, {"query": {"text": {"q": "transcript"}}})[0] == []  # a field name is not text
    assert search(corpus, {"query": {"text": {"q": "null"}}})[0] == []
    got, _ = search(corpus, {"query": {"text": {"q": "meeting", "field": "translation"}}})
    assert got == []
    got, _ = search(corpus, {"query": {"text": {"q": "nhóm", "field": "translation"}}})
    assert len(got) == N
    got, _ = search(corpus, {"query": {"text": {"q": "meeting -deadline"}}})
    assert set(got) == ids(lambda i: WORDS[i % 5] != "deadline")
    got, _ = search(corpus, {"query": {"text": {"q": '"số 12"'}}})
    assert set(got) == ids(lambda i: str(i).startswith("12"))
    got, _ = search(corpus, {"query": {"text": {"q": "alpha | email"}}})
    assert set(got) == ids(lambda i: WORDS[i % 5] in ("alpha", "email"))
    got, _ = search(corpus, {"query": {"text": {"q": "100%_"}}})  # LIKE wildcards are literal
    assert got == []
    # the SDK's search goes through the same engine
    via_sdk = {r.id for r in corpus.ds.records(query=rg.Query(query="meeting 12"))}
    assert via_sdk == ids(lambda i: "12" in str(i))


def test_metadata_filters(corpus):
    import argilla as rg

    got, total = search(corpus, {"filters": {"and": [terms(MD("channel"), ["a"])]}})
    assert set(got) == ids(lambda i: i % 3 == 0) and total == N // 3
    got, _ = search(corpus, {"filters": {"and": [rng(MD("duration"), 10, 11)]}})
    assert set(got) == ids(lambda i: "duration" in _expected(i)["metadata"]
                           and 10 <= _expected(i)["metadata"]["duration"] <= 11)
    got, _ = search(corpus, {"filters": {"and": [rng(MD("n"), le=4)]}})
    assert set(got) == ids(lambda i: i <= 4)
    got, _ = search(corpus, {"filters": {"and": [terms(MD("langs"), ["en"])]}})  # list-valued terms
    assert set(got) == ids(lambda i: i % 4 != 0)
    got, _ = search(corpus, {"query": {"text": {"q": "deadline"}},
                             "filters": {"and": [terms(MD("channel"), ["b", "c"]), rng(MD("n"), 100, 199)]}})
    assert set(got) == ids(lambda i: WORDS[i % 5] == "deadline" and i % 3 != 0 and 100 <= i <= 199)
    sdk = {r.id for r in corpus.ds.records(query=rg.Query(filter=rg.Filter(
        [("metadata.channel", "in", ["b"]), ("metadata.duration", ">=", 20.0)])))}
    assert sdk == ids(lambda i: i % 3 == 1 and _expected(i)["metadata"].get("duration", -1) >= 20)


def test_suggestion_filters(corpus):
    import argilla as rg

    q = {"entity": "suggestion", "question": "quality"}
    got, _ = search(corpus, {"filters": {"and": [terms({**q, "property": "value"}, ["good"])]}})
    assert set(got) == ids(lambda i: i % 2 == 1)
    got, _ = search(corpus, {"filters": {"and": [rng({**q, "property": "score"}, 0.95, None)]}})
    assert set(got) == ids(lambda i: (i % 100) / 100 >= 0.95)
    got, _ = search(corpus, {"filters": {"and": [terms({**q, "property": "agent"}, ["captions"])]}})
    assert set(got) == ids(lambda i: i % 3 == 0)
    got, _ = search(corpus, {"filters": {"and": [terms({**q, "property": "type"}, ["model"])]}})
    assert got == []  # the SDK sends no type
    sdk = {r.id for r in corpus.ds.records(query=rg.Query(filter=rg.Filter([("quality.score", ">=", 0.99)])))}
    assert sdk == ids(lambda i: i % 100 == 99)


def test_sort_and_paging(corpus):
    body = {"filters": {"and": [terms(MD("channel"), ["a", "b"])]},
            "sort": [{"scope": MD("duration"), "order": "desc"}]}
    pages, total, offset = [], None, 0
    while True:
        page, total = search(corpus, body, offset=offset, limit=17)
        if not page:
            break
        pages.extend(page)
        offset += 17
    want = ids(lambda i: i % 3 != 2)
    assert total == len(want) and len(pages) == len(want) and set(pages) == want
    with_d = [r for r in pages if "duration" in _expected(int(r[1:]))["metadata"]]
    durations = [_expected(int(r[1:]))["metadata"]["duration"] for r in with_d]
    assert durations == sorted(durations, reverse=True)
    assert pages[: len(with_d)] == with_d  # records without a duration come last
    # ascending integer sort, exact order across pages
    body = {"sort": [{"scope": MD("n"), "order": "asc"}]}
    assert search(corpus, body, offset=0, limit=5)[0] == [f"r{i:03d}" for i in range(5)]
    assert search(corpus, body, offset=235, limit=50)[0] == [f"r{i:03d}" for i in range(235, 240)]
    empty, total = search(corpus, body, offset=500, limit=5)
    assert empty == [] and total == N
    # by suggestion score, by record field
    got, _ = search(corpus, {"sort": [{"scope": {"entity": "suggestion", "question": "quality", "property": "score"},
                                       "order": "desc"}]}, limit=6)
    assert [int(r[1:]) % 100 for r in got] == [99, 99, 98, 98, 97, 97]
    got, _ = search(corpus, {"sort": [{"scope": {"entity": "record", "property": "inserted_at"}, "order": "asc"}]},
                    limit=N)
    assert len(got) == N


def test_response_filters_and_progress(corpus):
    status = {"entity": "response", "property": "status"}
    got, _ = search(corpus, {"filters": {"and": [terms(status, ["submitted"])]}})
    assert set(got) == ids(lambda i: i < 10 or 5 <= i < 15)
    got, _ = search(corpus, {"filters": {"and": [terms(status, ["pending"])]}})  # no response from anyone
    assert set(got) == ids(lambda i: i >= 15)
    got, _ = search(corpus, {"filters": {"and": [terms(status, ["pending", "discarded"])]}})
    assert set(got) == ids(lambda i: i >= 15 or i in (10, 11))
    ann1 = corpus.tokens["ann1"]
    for values, want in ((["submitted"], ids(lambda i: i < 10)), (["discarded"], {"r010", "r011"}),
                         (["draft"], {"r012"}), (["pending"], ids(lambda i: i > 12))):
        got, total = search(corpus, {"filters": {"and": [terms(status, values)]}}, key=ann1, me=True)
        assert set(got) == want and total == len(want), values
    # the UI's queue: pending for me and not yet completed by others
    queue = {"filters": {"and": [terms(status, ["pending"]), terms({"entity": "record", "property": "status"},
                                                                     ["pending"])]}}
    got, total = search(corpus, queue, key=ann1, me=True)
    assert set(got) == ids(lambda i: i >= 15) and total == N - 15
    # answers to a question, any user (owner route) and one user (/me)
    got, _ = search(corpus, {"filters": {"and": [terms({"entity": "response", "question": "quality"}, ["good"])]}})
    assert set(got) == ids(lambda i: (i < 10 and i % 2 == 0) or 5 <= i < 15 or i == 12)
    got, _ = search(corpus, {"filters": {"and": [terms({"entity": "response", "question": "quality"}, ["bad"])]}},
                    key=ann1, me=True)
    assert set(got) == ids(lambda i: i < 10 and i % 2 == 1)

    h = auth(corpus.server.api_key)
    progress = httpx.get(f"{corpus.server.url}/api/v1/datasets/{corpus.id}/progress", headers=h, timeout=30).json()
    assert (progress["total"], progress["completed"], progress["pending"]) == (N, 15, N - 15)
    assert {u["username"].split("-")[0] for u in progress["users"]} == {"ann1", "ann2"}
    mine = httpx.get(f"{corpus.server.url}/api/v1/me/datasets/{corpus.id}/metrics", headers=auth(ann1),
                     timeout=30).json()["responses"]
    assert mine == {"total": N, "submitted": 10, "discarded": 2, "draft": 1, "pending": N - 13}
    assert corpus.ds.progress()["completed"] == 15


def test_each_annotator_gets_their_own_order(corpus):
    status = {"entity": "response", "property": "status"}
    queue = {"filters": {"and": [terms(status, ["pending"]), terms({"entity": "record", "property": "status"},
                                                                     ["pending"])]}}
    a1, _ = search(corpus, queue, key=corpus.tokens["ann1"], me=True, limit=N)
    a2, _ = search(corpus, queue, key=corpus.tokens["ann2"], me=True, limit=N)
    assert set(a1) == set(a2)  # same pending records…
    assert a1[:5] != a2[:5] and a1 != a2  # …in a different order
    assert a1 != sorted(a1)  # shuffled, not insertion order
    assert search(corpus, queue, key=corpus.tokens["ann1"], me=True, limit=N)[0] == a1  # and stable
    assert search(corpus, queue, key=corpus.tokens["ann1"], me=True, offset=10, limit=10)[0] == a1[10:20]
    r = httpx.post(f"{corpus.server.url}/api/v1/datasets/{corpus.id}/records/search", json=queue,
                   params={"limit": N}, headers=auth(corpus.server.api_key), timeout=60).json()
    inserted = [it["record"]["inserted_at"] for it in r["items"]]  # no user: insertion order
    assert len(inserted) == N - 15 and inserted == sorted(inserted)


def test_metadata_metrics(corpus):
    h = auth(corpus.server.api_key)
    props = httpx.get(f"{corpus.server.url}/api/v1/me/datasets/{corpus.id}/metadata-properties", headers=h,
                      timeout=30).json()["items"]
    metrics = {p["name"]: httpx.get(f"{corpus.server.url}/api/v1/metadata-properties/{p['id']}/metrics",
                                    headers=h, timeout=30).json() for p in props}
    assert metrics["channel"]["total"] == N
    assert {v["term"]: v["count"] for v in metrics["channel"]["values"]} == {"a": 80, "b": 80, "c": 80}
    assert {v["term"]: v["count"] for v in metrics["langs"]["values"]} == {"vi": N, "en": N - N // 4}
    assert metrics["langs"]["total"] == N + N - N // 4
    durations = [_expected(i)["metadata"]["duration"] for i in range(N) if "duration" in _expected(i)["metadata"]]
    assert metrics["duration"] == {"type": "float", "min": min(durations), "max": max(durations)}
    assert metrics["n"] == {"type": "integer", "min": 0, "max": N - 1}


def test_vector_search_is_refused_clearly(corpus):
    r = httpx.post(f"{corpus.server.url}/api/v1/datasets/{corpus.id}/records/search",
                   json={"query": {"vector": {"name": "emb", "value": [1.0, 0.0]}}},
                   headers=auth(corpus.server.api_key), timeout=30)
    assert r.status_code == 422 and "not supported" in r.text


def test_deleted_and_updated_records(corpus):
    import argilla as rg

    ds = rg.Dataset(name="small", workspace=corpus.ds.workspace, client=corpus.client,
                    settings=rg.Settings(fields=[rg.TextField(name="text")],
                                         questions=[rg.TextQuestion(name="note")],
                                         metadata=[rg.TermsMetadataProperty(name="tag")])).create()
    ds.records.log([rg.Record(id=f"s{i}", fields={"text": f"word{i}"}, metadata={"tag": "x"}) for i in range(5)])
    small = SimpleNamespace(server=corpus.server, id=str(ds.id))
    assert search(small, {"query": {"text": {"q": "word"}}})[1] == 5
    ds.records.delete([r for r in ds.records if r.id in ("s0", "s1")])
    got, total = search(small, {"query": {"text": {"q": "word"}}})
    assert total == 3 and set(got) == {"s2", "s3", "s4"}
    ds.records.log([rg.Record(id="s2", fields={"text": "changed"}, metadata={"tag": "y"})])
    assert search(small, {"filters": {"and": [terms(MD("tag"), ["y"])]}})[0] == ["s2"]
    assert search(small, {"query": {"text": {"q": "changed"}}})[0] == ["s2"]


def test_bulk_validation_still_applies(corpus):
    """The server runner caches pydantic adapters and skips unheard webhook events: validation unchanged."""
    srv = corpus.server
    h = auth(srv.api_key)
    qs = {q["name"]: q["id"] for q in httpx.get(f"{srv.url}/api/v1/datasets/{corpus.id}/questions", headers=h,
                                                 timeout=30).json()["items"]}

    def put(item):
        return httpx.put(f"{srv.url}/api/v1/datasets/{corpus.id}/records/bulk", json={"items": [item]}, headers=h,
                         timeout=30)

    base = {"external_id": "bad", "fields": {"transcript": "t", "translation": "t"}}
    r = put({**base, "suggestions": [{"question_id": qs["quality"], "value": "excellent"}]})
    assert r.status_code == 422 and "excellent" in r.text
    r = put({**base, "metadata": {"n": "not a number"}})
    assert r.status_code == 422 and "integer" in r.text
    assert search(corpus, {"filters": {"and": [terms({"entity": "record", "property": "external_id"}, ["bad"])]}})[1] == 0


def test_worker_runs_jobs_with_the_engine(corpus):
    """Updating a dataset queues argilla's record-status job; the rq worker runs it with vecs-sql."""
    log = corpus.server.server_home / "logs" / "worker.log"
    before = log.read_text(errors="replace").count("Job OK")
    r = httpx.patch(f"{corpus.server.url}/api/v1/datasets/{corpus.id}", json={"guidelines": "Nghe rồi sửa."},
                    headers=auth(corpus.server.api_key), timeout=30)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and log.read_text(errors="replace").count("Job OK") <= before:
        time.sleep(0.2)
    text = log.read_text(errors="replace")
    assert text.count("Job OK") > before, text[-2000:]
    assert "Traceback" not in text
    progress = httpx.get(f"{corpus.server.url}/api/v1/datasets/{corpus.id}/progress", headers=auth(corpus.server.api_key),
                         timeout=30).json()
    assert (progress["completed"], progress["pending"]) == (15, N - 15)  # statuses recomputed, unchanged


def test_webhooks_still_fire(corpus):
    """Events are skipped only while no webhook listens: with one enabled, a logged record reaches it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import argilla as rg

    got: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    h = auth(corpus.server.api_key)
    wh = httpx.post(f"{corpus.server.url}/api/v1/webhooks", headers=h, timeout=30,
                    json={"url": f"http://127.0.0.1:{hook.server_address[1]}/hook", "events": ["record.created"]})
    assert wh.status_code == 201, wh.text
    try:
        corpus.ds.records.log([rg.Record(id="hooked", fields={"transcript": "a", "translation": "b"})])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not got:
            time.sleep(0.2)
        assert got and got[0]["type"] == "record.created" and got[0]["data"]["external_id"] == "hooked"
    finally:
        httpx.delete(f"{corpus.server.url}/api/v1/webhooks/{wh.json()['id']}", headers=h, timeout=30)
        hook.shutdown()
        corpus.ds.records.delete([r for r in corpus.ds.records(query=rg.Query(
            filter=rg.Filter([("id", "in", ["hooked"])])))])
