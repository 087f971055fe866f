"""The local Argilla as an attacker sees it: files other users could read, secrets in child environments, an
unauthenticated Redis queue (code execution through rq), cross-origin reads, DNS rebinding."""
from __future__ import annotations

import os
import stat
import threading
import urllib.request
from pathlib import Path

import httpx
import pytest

from conftest import free_port_pair

SECRETS = {"GEMINI_API_KEYS": "AIzaSECRET-gemini", "HF_TOKEN": "hf_SECRET-hub",
           "VECS_DB_URL": "postgresql+psycopg://vecs:SECRET-db@127.0.0.1:1/vecs"}


@pytest.fixture(scope="module")
def exposed_server(tmp_path_factory):
    """A server started the way a user would, with secrets in the environment and the usual umask 022."""
    from annotation.server import launcher

    try:
        launcher.check_server_venv()
        launcher.redis_binary()
    except launcher.LaunchError as exc:
        pytest.skip(f"Argilla server unavailable: {exc}")
    home = tmp_path_factory.mktemp("exposed-home")
    saved = {k: os.environ.get(k) for k in SECRETS}
    old_umask = os.umask(0o022)
    os.environ.update(SECRETS)
    try:
        info = launcher.serve(home, port=free_port_pair(), timeout=240)
    finally:
        os.umask(old_umask)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield home, info
    finally:
        launcher.stop(home)


def _private(path: Path) -> bool:
    return not (path.stat().st_mode & 0o077)


def test_server_files_are_private_from_the_start(exposed_server):
    home, info = exposed_server
    server_home = info.home
    assert _private(server_home) and stat.S_IMODE(server_home.stat().st_mode) == 0o700
    for sub in ("logs", "redis", "tmp"):
        assert _private(server_home / sub), sub
    for path in [*server_home.glob("argilla.db*"), *(server_home / "logs").iterdir(), server_home / "owner.json"]:
        assert _private(path), f"{path.name} is readable by other users"


def test_children_do_not_inherit_secrets(exposed_server):
    _, info = exposed_server
    assert set(info.pids) >= {"redis", "server", "worker", "audio"}
    for name, pid in info.pids.items():
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        for key, value in SECRETS.items():
            assert key.encode() + b"=" not in environ and value.encode() not in environ, f"{key} reached {name}"


def test_redis_takes_no_unauthenticated_tcp_connection(exposed_server):
    _, info = exposed_server
    environ = Path(f"/proc/{info.pids['server']}/environ").read_bytes().split(b"\0")
    url = next(v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"ARGILLA_REDIS_URL="))
    if url.startswith("unix://"):
        sock = Path(url[len("unix://"):].split("?", 1)[0])
        assert _private(sock.parent) and sock.is_socket()
        pid = info.pids["redis"]
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
        tcp = [ln.split() for t in ("tcp", "tcp6") for ln in Path(f"/proc/{pid}/net/{t}").read_text().splitlines()[1:]]
        assert not [f for f in tcp if f[3] == "0A" and f[9] in inodes], "redis listens on a TCP port"
    else:
        assert "@" in url, "redis over TCP without a password"


def test_the_reviewers_key_file_is_never_readable_by_others(exposed_server, monkeypatch):
    """Created 0600 in a 0700 folder: no moment when another user could read it."""
    from annotation.client import connect, workspace
    from annotation.reviewer import reviewer_key

    home, info = exposed_server
    seen = []
    real_replace = os.replace

    def spy(src, dst, *a, **kw):
        if str(dst).endswith("simulated-reviewer.json"):
            seen.append(stat.S_IMODE(os.stat(src).st_mode))
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", spy)
    old = os.umask(0o022)
    try:
        client = connect(info.url, info.api_key)
        workspace(client, "vecs-test", create=True)
        key = reviewer_key(client, home / "elsewhere", "vecs-test")
    finally:
        os.umask(old)
    path = home / "elsewhere" / "argilla" / "simulated-reviewer.json"
    assert key and seen == [0o600] and _private(path) and _private(path.parent)


# -- beyond localhost: no CORS *, a Host check ----------------------------------------------------------------


def test_argilla_refuses_foreign_hosts_and_origins(exposed_server):
    _, info = exposed_server
    port = int(info.url.rsplit(":", 1)[1])
    ok = httpx.get(f"{info.url}/api/v1/status")
    assert ok.status_code == 200
    rebound = httpx.get(f"{info.url}/api/v1/status", headers={"Host": f"attacker.example:{port}"})
    assert rebound.status_code == 400  # DNS rebinding: a page on attacker.example resolving to 127.0.0.1
    cross = httpx.get(f"{info.url}/api/v1/me", headers={"Origin": "https://attacker.example",
                                                        "X-Argilla-Api-Key": info.api_key})
    assert cross.headers.get("access-control-allow-origin") not in ("*", "https://attacker.example")


def test_the_clip_server_refuses_foreign_hosts_and_origins(exposed_server):
    home, info = exposed_server
    (home / "argilla_audio" / "v").mkdir(parents=True, exist_ok=True)
    (home / "argilla_audio" / "v" / "c.ogg").write_bytes(b"OggS" + b"\0" * 100)
    url = info.audio_url.rstrip("/") + "/v/c.ogg"
    port = int(info.audio_url.rstrip("/").rsplit(":", 1)[1])
    argilla_origin = info.url
    good = httpx.get(url, headers={"Origin": argilla_origin})
    assert good.status_code == 200 and good.headers.get("access-control-allow-origin") == argilla_origin
    evil = httpx.get(url, headers={"Origin": "https://attacker.example"})
    assert evil.headers.get("access-control-allow-origin") not in ("*", "https://attacker.example")
    rebound = httpx.get(url, headers={"Host": f"attacker.example:{port}"})
    assert rebound.status_code in (400, 421)


def test_clip_server_allows_its_configured_public_name(tmp_path):
    from annotation.server.audio import make_server

    (tmp_path / "a.ogg").write_bytes(b"OggS" + b"\0" * 10)
    server = make_server(tmp_path, "127.0.0.1", 0, allowed_hosts=["clips.example.org"],
                         allowed_origins=["https://argilla.example.org"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/a.ogg", headers={
            "Host": "clips.example.org", "Origin": "https://argilla.example.org"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "https://argilla.example.org"
    finally:
        server.shutdown()
        server.server_close()
