"""A tiny static file server for annotation clips: CORS for the Argilla UI, HTTP Range for seeking.

``python -m annotation.server.audio --dir DIR --port P [--host 127.0.0.1] [--allowed-host NAME]…
[--allow-origin ORIGIN]…``. Browsers seek ``<audio>`` with ``Range: bytes=…`` requests and refuse to seek when
the server ignores them (Python's http.server does); this one answers 206 with ``Content-Range``. Directory
listings are off. Only requests naming an allowed host are served (a page on a name of its own that resolves
here — DNS rebinding — gets 421), and cross-origin reads are allowed to the Argilla origins given, never ``*``.
Standard library only.
"""
from __future__ import annotations

import argparse
import mimetypes
import re
import sys
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

AUDIO_TYPES = {
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".oga": "audio/ogg",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
    ".json": "application/json",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """``(start, end)`` inclusive, ``None`` to serve everything, ``"unsatisfiable"`` for a 416."""
    m = _RANGE.match(header.strip().replace(" ", ""))
    if not m:
        return None  # malformed or multi-range: RFC 9110 lets us ignore it and send the whole file
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        return (max(0, size - n), size - 1)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or start > end:
        return "unsatisfiable"
    return (start, end)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:80`` → ``::1``)."""
    header = (header or "").strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class ClipHandler(BaseHTTPRequestHandler):
    server_version = "vecs-clips/1.0"
    protocol_version = "HTTP/1.1"
    root: Path = Path(".")
    allowed_hosts: frozenset = frozenset(LOOPBACK)
    allowed_origins: frozenset = frozenset()

    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        if origin and origin in self.allowed_origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Headers", "Range")
            self.send_header("Access-Control-Expose-Headers", "Accept-Ranges, Content-Length, Content-Range")
        self.send_header("Vary", "Origin")

    def _host_ok(self) -> bool:
        if host_name(self.headers.get("Host", "")) in self.allowed_hosts:
            return True
        self._empty(HTTPStatus.MISDIRECTED_REQUEST)
        return False

    def _resolve(self) -> Path | None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        target = (self.root / path.lstrip("/")).resolve()
        try:
            target.relative_to(self.root)
        except ValueError:
            return None
        return target if target.is_file() else None

    def _empty(self, status: HTTPStatus, extra: dict | None = None) -> None:
        self.send_response(status)
        self._cors()
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_OPTIONS(self) -> None:  # noqa: N802 - CORS pre-flight (a Range header makes one)
        if self._host_ok():
            self._empty(HTTPStatus.NO_CONTENT, {"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                                                "Access-Control-Max-Age": "86400"})

    def do_HEAD(self) -> None:  # noqa: N802
        if self._host_ok():
            self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        if self._host_ok():
            self._serve(body=True)

    def _serve(self, body: bool) -> None:
        target = self._resolve()
        if target is None:
            self._empty(HTTPStatus.NOT_FOUND)
            return
        size = target.stat().st_size
        ctype = AUDIO_TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        rng = parse_range(self.headers.get("Range", ""), size) if self.headers.get("Range") else None
        if rng == "unsatisfiable":
            self._empty(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, {"Content-Range": f"bytes */{size}"})
            return
        if rng is None:
            start, end, status = 0, size - 1, HTTPStatus.OK
        else:
            start, end = rng
            status = HTTPStatus.PARTIAL_CONTENT
        length = max(0, end - start + 1)
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", ctype)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "public, max-age=3600")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body or length == 0:
            return
        with open(target, "rb") as f:
            f.seek(start)
            left = length
            try:
                while left > 0:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):  # the browser moved on (seek, pause)
                pass

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write(f"{self.address_string()} - {fmt % args}\n")


def make_server(root: Path, host: str, port: int, allowed_hosts=None, allowed_origins=()) -> ThreadingHTTPServer:
    """``allowed_hosts``: the names requests may use (default: loopback and ``host``); ``allowed_origins``:
    the pages (the Argilla UI) allowed to read clips cross-origin."""
    hosts = {h.lower() for h in (allowed_hosts or ())} | set(LOOPBACK)
    if host not in ("0.0.0.0", "", "::"):
        hosts.add(host.lower())
    handler = type("Handler", (ClipHandler,), {"root": Path(root).resolve(), "allowed_hosts": frozenset(hosts),
                                               "allowed_origins": frozenset(allowed_origins or ())})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--allowed-host", action="append", default=[], help="A name requests may use (repeatable).")
    ap.add_argument("--allow-origin", action="append", default=[], help="An origin allowed to read clips (repeatable).")
    a = ap.parse_args(argv)
    root = Path(a.dir)
    root.mkdir(parents=True, exist_ok=True)
    server = make_server(root, a.host, a.port, a.allowed_host, a.allow_origin)
    print(f"serving {root} on http://{a.host}:{a.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
