"""The progress dashboard as a web page (as the Data Factory paper's dashboard shows it): channels → videos → chunks, verified hours,
annotators. Rendered from the state store on every request; no JavaScript framework, no build step."""
from __future__ import annotations

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .foundation.config import Settings
from .status import status as collect
from .store import ChunkStatus

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{padding:5px 10px;border-bottom:1px solid #e3e3e3;text-align:left}
th{background:#f6f6f6}.num{text-align:right}.bar{display:flex;width:220px;height:12px;border-radius:6px;overflow:hidden;background:#eee}
.bar span{display:block;height:100%}.pending{background:#c9c9c9}.prelabeled{background:#f2a93b}.pushed{background:#5b8def}
.verified{background:#2f9e57}.failed{background:#d9534f}.cards{display:flex;gap:16px}.card{background:#f6f6f6;border-radius:10px;padding:12px 18px}
.card b{display:block;font-size:22px}.state-up{color:#2f9e57}.state-needs{color:#b26b00}details{margin:4px 0}
"""


def _bar(chunks: dict) -> str:
    total = sum(chunks.values()) or 1
    parts = []
    for key, css in ((ChunkStatus.VERIFIED, "verified"), (ChunkStatus.PUSHED, "pushed"),
                     (ChunkStatus.PRELABELED, "prelabeled"), (ChunkStatus.PENDING, "pending"),
                     (ChunkStatus.PRELABELING, "pending"), (ChunkStatus.BATCHED, "pending"),
                     (ChunkStatus.FAILED, "failed")):
        n = chunks.get(key, 0)
        if n:
            parts.append(f'<span class="{css}" style="width:{100 * n / total:.1f}%" title="{key}: {n}"></span>')
    return f'<div class="bar">{"".join(parts)}</div>'


def render(data: dict) -> str:
    t = data["totals"]
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='15'>"
           f"<title>VECS factory</title><style>{_CSS}</style></head><body><h1>VECS factory</h1><div class='cards'>"]
    for label, value in (("channels", t["channels"]), ("videos", t["videos"]), ("hours ingested", f"{t['hours']:.2f}"),
                         ("hours pre-labeled", f"{t['prelabeled_hours']:.2f}"),
                         ("hours verified", f"{t['verified_hours']:.2f}"),
                         ("segments verified", f"{t['verified_segments']}/{t['segments']}")):
        out.append(f"<div class='card'><b>{value}</b>{label}</div>")
    out.append("</div><h2>Channels</h2><table><tr><th>Channel</th><th class='num'>Videos</th><th class='num'>Pending</th>"
               "<th class='num'>Approved</th><th>Chunks</th><th class='num'>Verified h</th><th>Status</th></tr>")
    for ch in data["channels"]:
        c = ch["chunks"]
        pending = sum(v for k, v in c.items() if k != ChunkStatus.VERIFIED)
        state = "state-up" if ch["state"] == "up to date" else "state-needs"
        out.append(f"<tr><td>{e(ch['name'])}</td><td class='num'>{ch['videos']}</td><td class='num'>{pending}</td>"
                   f"<td class='num'>{c[ChunkStatus.VERIFIED]}</td><td>{_bar(c)}</td>"
                   f"<td class='num'>{ch['verified_hours']:.2f}</td><td class='{state}'>{e(ch['state'])}</td></tr>")
    out.append("</table>")
    for ch in data["channels"]:
        out.append(f"<details><summary><b>{e(ch['name'])}</b> — {ch['videos']} videos</summary><table>"
                   "<tr><th>Video</th><th>Title</th><th class='num'>Duration</th><th class='num'>Chunks</th>"
                   "<th>Progress</th><th class='num'>Segments verified</th></tr>")
        for v in ch["video_list"]:
            out.append(f"<tr><td>{e(v['video_id'])}</td><td>{e(v['title'] or '')}</td>"
                       f"<td class='num'>{v['duration'] / 60:.1f} min</td><td class='num'>{v['chunk_count']}</td>"
                       f"<td>{_bar(v['chunks'])} {e(v['progress'])}</td>"
                       f"<td class='num'>{v['verified_segments']}/{v['segments']}</td></tr>")
        out.append("</table></details>")
    out.append("<h2>Annotators</h2><table><tr><th>Annotator</th><th class='num'>Segments</th>"
               "<th class='num'>Discarded</th><th class='num'>Audio h</th><th class='num'>Segments / h</th></tr>")
    for a in data.get("annotators", []):
        rate = "" if a["segments_per_hour"] is None else a["segments_per_hour"]
        out.append(f"<tr><td>{e(a['annotator'])}</td><td class='num'>{a['segments']}</td><td class='num'>{a['discarded']}</td>"
                   f"<td class='num'>{a['audio_hours']:.3f}</td><td class='num'>{rate}</td></tr>")
    out.append("</table></body></html>")
    return "".join(out)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 6910) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = render(collect(settings)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
