"""``vecs argilla serve``: a local Argilla 2.8 without Elasticsearch, detached, in ``$VECS_HOME/argilla/``.

Four processes, each in its own session (``setsid``) so the command returns and a terminal hang-up does not
reach them, each with its pid in ``server.json``:

* ``redis-server`` (Debian's) on a unix socket in a 0700 folder, no TCP port, no persistence — argilla's
  background jobs (an rq queue anyone can reach runs their code: nobody but the owner reaches this one);
* the rq worker: ``python -m annotation.server worker`` (argilla_server's ``worker``);
* the server: ``python -m annotation.server serve`` — migrates the database, makes sure the owner account
  exists, runs uvicorn with ``ARGILLA_SEARCH_ENGINE=vecs-sql`` (``annotation/server/search_engine.py``);
* the clip server (``annotation/server/audio.py``) for ``$VECS_HOME/argilla_audio/`` on port + 1.

All run with the server venv's python (``.argilla-venv``, see ``scripts/setup.sh``); ``PYTHONPATH`` holds a
folder with a single link to the ``annotation`` package, so nothing else of the main venv leaks in. Their
environment is built from a short allowlist (no Gemini keys, Hub token or database URL of ours) and they run
with umask 077, so what they create (Argilla's database holds API keys) is readable by the owner only.

The server home (0700) holds ``argilla.db`` (SQLite, unless ``--database-url``), ``logs/``, ``redis/``, ``tmp/``
(``TMPDIR``: every ``import argilla_server`` copies the 14 MB UI there; emptied on start and stop),
``owner.json`` (0600: the owner's password and API key) and ``server.json`` (URLs and pids — no secrets).

Both servers answer only requests naming one of their allowed hosts (a DNS-rebinding page cannot reach them
through a name of its own) and allow cross-origin reads from the Argilla origins only (no ``CORS *``). Bound
beyond localhost they need TLS in front (a reverse proxy): see the README.

Standard library only, so the launcher also runs from tests and benchmarks.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from dataset_builder.foundation.atomic import pid_alive, private_dir
from dataset_builder.foundation.secrets import child_env as scrubbed_env

OWNER_USERNAME = "vecs-owner"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../annotation
REPO_ROOT = PACKAGE_DIR.parent
DEFAULT_VENV = REPO_ROOT / ".argilla-venv"
STATUS_PATH = "/api/v1/status"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: What the servers' environment may take from ours (everything else — keys, tokens, URLs with passwords — stays).
PASSED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TERM", "SHELL", "HF_HUB_OFFLINE",
              "HF_DATASETS_OFFLINE", "SSL_CERT_FILE", "SSL_CERT_DIR")
#: The longest unix socket path the kernel takes is 107 bytes; longer homes get a short private folder in /tmp.
SOCKET_PATH_MAX = 100


class LaunchError(RuntimeError):
    """A one-line, user-facing failure of ``vecs argilla serve``."""


@dataclass
class ServerInfo:
    url: str
    audio_url: str
    home: Path
    username: str
    api_key: str = field(repr=False)
    password: str = field(repr=False)
    already_running: bool = False
    startup_s: float = 0.0
    pids: dict = field(default_factory=dict)

    @property
    def credentials_path(self) -> Path:
        return self.home / "owner.json"


# ----------------------------------------------------------------------------------------------------------
# Paths and small helpers


def server_home(vecs_home: Path) -> Path:
    return Path(vecs_home) / "argilla"


def audio_dir(vecs_home: Path) -> Path:
    return Path(vecs_home) / "argilla_audio"


def server_python() -> Path:
    """The server venv's python (``VECS_ARGILLA_VENV`` overrides the venv's location)."""
    venv = Path(os.environ.get("VECS_ARGILLA_VENV") or DEFAULT_VENV)
    return venv / "bin" / "python"


def check_server_venv() -> Path:
    py = server_python()
    venv = py.parent.parent
    if not py.exists():
        raise LaunchError(f"the Argilla server venv is missing ({venv}): run make setup")
    if not any(venv.glob("lib/python3*/site-packages/argilla_server/__init__.py")):
        raise LaunchError(f"argilla-server is not installed in {venv}: run make setup")
    return py


def redis_binary() -> str:
    exe = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if not exe:
        raise LaunchError("redis-server is not installed (Debian package 'redis-server'): run make setup")
    return exe


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        # as uvicorn and http.server bind: a port in TIME_WAIT after a stop is free, a listener is not
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise LaunchError(f"cannot bind {host}:{port} ({exc.strerror})") from None
    return True


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((_connect_host(host), port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _url(host: str, port: int) -> str:
    h = _connect_host(host)
    return f"http://[{h}]:{port}" if ":" in h else f"http://{h}:{port}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ours(pid: int, marker: str) -> bool:
    """Alive and still the process we started (pids get reused after a reboot)."""
    return pid_alive(pid) and (not marker or marker in _cmdline(pid) or not Path(f"/proc/{pid}").exists())


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:]) or "(empty log)"


def redact_url(url: str) -> str:
    """A database URL without its password, for server.json and messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"


def argilla_database_url(database_url: Optional[str], home: Path) -> str:
    """Our URLs (``postgresql+psycopg://…``, ``sqlite:///…``) in the drivers argilla-server uses."""
    if not database_url:
        return f"sqlite+aiosqlite:///{home / 'argilla.db'}"
    url = database_url
    for prefix in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


# ----------------------------------------------------------------------------------------------------------
# State


def _read_state(home: Path) -> dict:
    try:
        return json.loads((home / "server.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_state(home: Path, state: dict) -> None:
    tmp = home / "server.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, home / "server.json")


def allowed_hosts(host: str, public_hosts=()) -> list[str]:
    """The names the servers answer to: loopback, the address they are bound to, and — bound beyond
    localhost — this machine's names and addresses, plus any ``--public-host`` (the name behind a proxy)."""
    names = list(LOOPBACK)
    if host not in ("0.0.0.0", "", "::"):
        names.append(host)
    if host not in LOOPBACK:
        fqdn = socket.getfqdn()
        names += [socket.gethostname(), fqdn]
        try:
            names += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)]
        except OSError:
            pass
    names += [h.strip() for h in public_hosts if h and h.strip()]
    return list(dict.fromkeys(n for n in names if n))


def allowed_origins(hosts: list[str], port: int) -> list[str]:
    """Origins of the Argilla UI (directly, or behind a TLS proxy): the only ones allowed cross-origin reads."""
    out = []
    for h in hosts:
        name = f"[{h}]" if ":" in h else h
        out += [f"http://{name}:{port}", f"https://{name}", f"https://{name}:{port}"]
    return out


def _tighten(home: Path) -> None:
    """Files an older version (or another umask) left readable by others: owner-only now."""
    for path in [*home.glob("argilla.db*"), *(home / "logs").glob("*"), home / "owner.json", home / "server.json"]:
        try:
            if path.is_file() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except OSError:
            pass


def _redis_socket(home: Path) -> Path:
    sock = home / "redis" / "redis.sock"
    if len(os.fsencode(sock)) <= SOCKET_PATH_MAX:
        return sock
    return Path(tempfile.mkdtemp(prefix="vecs-redis-")) / "redis.sock"  # mkdtemp: 0700


def _credentials(home: Path) -> dict:
    """The owner's username, password and API key, and the key that signs UI sessions (so logins survive
    a restart; argilla draws a new one per process otherwise) — in ``owner.json``, mode 0600."""
    path = home / "owner.json"
    creds = json.loads(path.read_text()) if path.exists() else {}
    fresh = {
        "username": OWNER_USERNAME,
        "password": secrets.token_urlsafe(18),
        "api_key": "vecs.owner." + secrets.token_urlsafe(32),
        "session_secret": secrets.token_hex(32),
    }
    if all(k in creds for k in fresh):
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return creds
    creds = {**fresh, **creds}
    tmp = home / "owner.json.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return creds


def _running(home: Path, state: dict) -> bool:
    pids = state.get("pids") or {}
    markers = state.get("markers") or {}
    if "server" not in pids:
        return False
    return all(_ours(int(pid), markers.get(name, "")) for name, pid in pids.items())


def status(vecs_home: Path) -> Optional[dict]:
    """The state of a running server (``server.json`` plus a health check), or None."""
    home = server_home(vecs_home)
    state = _read_state(home)
    if state and _running(home, state) and http_ok(state["url"] + STATUS_PATH):
        return state
    return None


# ----------------------------------------------------------------------------------------------------------
# Start and stop


def _spawn(name: str, cmd: list[str], env: dict, home: Path, cwd: Path) -> subprocess.Popen:
    log = home / "logs" / f"{name}.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # owner-only from the first byte
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        out.flush()
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(cwd),
            start_new_session=True, close_fds=True, umask=0o077,
        )


def _child_env(home: Path, vecs_home: Path, db_url: str, redis_url: str, session_secret: str,
               hosts: list[str], origins: list[str]) -> dict:
    pypath = home / "pythonpath"
    pypath.mkdir(exist_ok=True)
    link = pypath / "annotation"
    if not (link.is_symlink() and link.resolve() == PACKAGE_DIR):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(PACKAGE_DIR, target_is_directory=True)
    env = scrubbed_env(base={k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("LC_")})
    env.update({
        "PYTHONPATH": str(pypath),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": str(home / "tmp"),
        "VECS_HOME": str(vecs_home),
        "ARGILLA_HOME_PATH": str(home),
        "ARGILLA_DATABASE_URL": db_url,
        "ARGILLA_REDIS_URL": redis_url,
        "ARGILLA_SEARCH_ENGINE": "vecs-sql",
        "ARGILLA_AUTH_SECRET_KEY": session_secret,
        "ARGILLA_CORS_ORIGINS": json.dumps(origins),  # argilla-server's default is "*" with credentials
        "VECS_ALLOWED_HOSTS": ",".join(hosts),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "160",  # the worker logs through rich: wide lines, not 80-column wraps
    })
    return env


def _clean_tmp(home: Path) -> None:
    tmp = home / "tmp"
    if tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    private_dir(tmp)


def serve(
    vecs_home: Path,
    host: str = "127.0.0.1",
    port: int = 6900,
    database_url: Optional[str] = None,
    timeout: float = 180.0,
    worker: bool = True,
    on_progress: Optional[Callable[[str], None]] = None,
    public_hosts: tuple[str, ...] | list[str] = (),
) -> ServerInfo:
    """Start everything (or find it running) and return where it answers."""
    t0 = time.monotonic()
    vecs_home = Path(vecs_home).resolve()
    home = private_dir(server_home(vecs_home))
    for sub in ("logs", "redis"):
        private_dir(home / sub)
    _tighten(home)
    clips = audio_dir(vecs_home)
    clips.mkdir(parents=True, exist_ok=True)
    say = on_progress or (lambda msg: None)

    state = _read_state(home)
    if state.get("pids"):
        if _running(home, state) and http_ok(state["url"] + STATUS_PATH):
            creds = _credentials(home)
            return ServerInfo(url=state["url"], audio_url=state["audio_url"], home=home,
                              username=creds["username"], api_key=creds["api_key"], password=creds["password"],
                              already_running=True, pids=state["pids"])
        say("a previous server is only partly running: stopping what is left")
        stop(vecs_home)

    py = check_server_venv()
    redis_exe = redis_binary()
    audio_port = port + 1
    for p, what in ((port, "Argilla"), (audio_port, "the clip server")):
        if not port_free(host, p):
            raise LaunchError(f"port {p} on {host} is in use (wanted for {what}): stop whatever holds it or pass --port")

    creds = _credentials(home)
    db_url = argilla_database_url(database_url, home)
    sock = _redis_socket(home)
    sock.unlink(missing_ok=True)
    _clean_tmp(home)
    hosts = allowed_hosts(host, public_hosts)
    origins = allowed_origins(hosts, port)
    env = _child_env(home, vecs_home, db_url, f"unix://{sock}?db=0", creds["session_secret"], hosts, origins)
    url, audio_url = _url(host, port), _url(host, audio_port) + "/"

    procs: dict[str, subprocess.Popen] = {}
    markers = {
        "redis": "redis-server",
        "audio": "annotation.server.audio",
        "worker": "annotation.server worker",
        "server": "annotation.server serve",
    }
    try:
        procs["redis"] = _spawn("redis", [
            redis_exe, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
            "--dir", str(home / "redis"), "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--protected-mode", "yes", "--loglevel", "warning",
        ], env, home, home)
        procs["audio"] = _spawn("audio", [str(py), "-m", "annotation.server.audio", "--dir", str(clips),
                                          "--host", host, "--port", str(audio_port),
                                          *[a for h in hosts for a in ("--allowed-host", h)],
                                          *[a for o in origins for a in ("--allow-origin", o)]], env, home, home)
        procs["server"] = _spawn("server", [str(py), "-m", "annotation.server", "serve", "--host", host,
                                            "--port", str(port), "--credentials", str(home / "owner.json")],
                                 env, home, home)
        if worker:
            procs["worker"] = _spawn("worker", [str(py), "-m", "annotation.server", "worker", "--num-workers", "1"],
                                     env, home, home)
        _write_state(home, {
            "url": url, "audio_url": audio_url, "host": host, "port": port, "audio_port": audio_port,
            "redis_socket": str(sock), "allowed_hosts": hosts, "database_url": redact_url(db_url),
            "pids": {k: p.pid for k, p in procs.items()}, "markers": {k: markers[k] for k in procs},
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "search_engine": "vecs-sql",
        })
        say(f"starting Argilla on {url} (logs in {home / 'logs'})")
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise LaunchError(
                        f"{name} exited with code {proc.returncode} while starting; last lines of "
                        f"{home / 'logs' / (name + '.log')}:\n{tail(home / 'logs' / (name + '.log'))}"
                    )
            if port_open(host, audio_port) and http_ok(url + STATUS_PATH, timeout=1.0):
                break
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"Argilla did not answer on {url} within {timeout:.0f} s; last lines of "
                    f"{home / 'logs' / 'server.log'}:\n{tail(home / 'logs' / 'server.log')}"
                )
            time.sleep(0.1)
    except BaseException:
        for proc in procs.values():
            _terminate_group(proc.pid)
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        st = _read_state(home)
        st.pop("pids", None)
        _write_state(home, st)
        raise
    return ServerInfo(url=url, audio_url=audio_url, home=home, username=creds["username"],
                      api_key=creds["api_key"], password=creds["password"],
                      startup_s=time.monotonic() - t0, pids={k: p.pid for k, p in procs.items()})


def _terminate_group(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal the session we started for this child (its pid is the group id: setsid)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop(vecs_home: Path, timeout: float = 15.0) -> bool:
    """Stop every process ``serve`` started; True if something was running."""
    home = server_home(Path(vecs_home).resolve())
    state = _read_state(home)
    pids = state.get("pids") or {}
    markers = state.get("markers") or {}
    live = {name: int(pid) for name, pid in pids.items() if _ours(int(pid), markers.get(name, ""))}
    # the server and the worker first (they talk to redis), then the rest
    order = sorted(live, key=lambda n: {"server": 0, "worker": 1, "audio": 2, "redis": 3}.get(n, 9))
    for name in order:
        _terminate_group(live[name])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in live.values()):
        _reap(live.values())
        time.sleep(0.05)
    for pid in live.values():
        if pid_alive(pid):
            _terminate_group(pid, signal.SIGKILL)
    _reap(live.values())
    if state:
        state.pop("pids", None)
        state["stopped_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        _write_state(home, state)
    if (home / "tmp").exists():
        shutil.rmtree(home / "tmp", ignore_errors=True)
    sock = Path(state.get("redis_socket") or home / "redis" / "redis.sock")
    sock.unlink(missing_ok=True)
    if sock.parent.name.startswith("vecs-redis-") and sock.parent != home / "redis":
        shutil.rmtree(sock.parent, ignore_errors=True)
    return bool(live)


def _reap(pids) -> None:
    """Collect children of this process (in-process callers such as tests), so they do not linger as zombies."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        except OSError:
            pass


def info_dict(info: ServerInfo) -> dict:
    d = asdict(info)
    d["home"] = str(info.home)
    d.pop("api_key")
    d.pop("password")
    return d


if __name__ == "__main__":  # python -m annotation.server.launcher [--stop] — handy without the vecs CLI
    home = Path(os.environ.get("VECS_HOME", "vecs_home"))
    if "--stop" in sys.argv:
        print("stopped" if stop(home) else "not running")
    else:
        i = serve(home, on_progress=print)
        print(i.url, i.audio_url)
