"""Annotation-queue search latency on a 100k-record Argilla dataset (vecs-sql engine, SQLite).

    python -m benchmarks.argilla_search [--records 100000 --calls 200 --home DIR --keep]

Starts the real server through the launcher of ``vecs argilla serve`` (in ``--home``, default a fresh temp
dir), builds a dataset shaped like ``vecs argilla push``'s (``annotation/design.py``:
audio custom field + context, transcript/translation/start/end suggestions, channel/video/chunk/start/
duration/en_ratio metadata) through the server's bulk endpoint (owner key, 500 records a request, two
requests in flight), lets one annotator answer 1,000 records, then times the call the UI makes for its
annotation queue — ``POST /api/v1/me/datasets/{id}/records/search?include=responses&include=suggestions``
with the pending filters — as an annotator, in three shapes (plain queue; + a channel filter and a sort by
duration; + a text query), ~``--calls`` calls in all, with varying pages, channels and words.
Goal: p95 <= 300 ms on 2 cores. With ``--home`` and ``--keep`` a built dataset is reused;
``--database-url postgresql://…`` runs it on PostgreSQL (results in ``argilla_search_postgresql.json``).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from annotation.server import launcher
from benchmarks._common import write_result

DATASET = "bench-queue"
CHANNELS = [f"channel-{k:02d}" for k in range(12)]
WORDS = ["meeting", "deadline", "team", "project", "email", "check", "feedback", "presentation", "report",
         "mình", "họp", "nhé"]


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def make_items(start: int, n: int, qids: dict, audio_base: str, seed: int = 0) -> list[dict]:
    from dataset_builder.synth.lexicon import make_utterance
    from dataset_builder.foundation.text import en_ratio

    items = []
    for i in range(start, start + n):
        rng = random.Random(seed * 1_000_003 + i)
        transcript, translation, *_ = make_utterance(rng)
        prev_text, _, *_ = make_utterance(rng)
        video = f"vid{i // 50:05d}"
        channel = CHANNELS[(i // 50) % len(CHANNELS)]
        chunk, start_s = (i % 50) // 10, (i % 50) * 6.0 + rng.random()
        duration = round(rng.uniform(1.0, 15.0), 3)
        rid = f"{video}-{chunk:03d}-{start_s:09.3f}"
        fields = {
            "audio": {"src": f"{audio_base}{video}/{rid}.ogg", "video_id": video, "abs_start": round(start_s, 3),
                      "abs_end": round(start_s + duration, 3), "clip_duration": round(duration + 2, 3),
                      "seg_start": 1.0, "seg_end": round(duration + 1, 3)},
            "context": f"**Before / Trước:** {prev_text}",
        }
        suggestions = [
            {"question_id": qids["transcript"], "value": transcript, "agent": "gemini-2.5-flash", "type": "model"},
            {"question_id": qids["translation"], "value": translation, "agent": "gemini-2.5-flash", "type": "model"},
            {"question_id": qids["start_fix"], "value": f"{start_s:.3f}", "agent": "prelabel"},
            {"question_id": qids["end_fix"], "value": f"{start_s + duration:.3f}", "agent": "prelabel"},
        ]
        metadata = {"channel": channel, "video_id": video, "chunk": chunk, "start": round(start_s, 3),
                    "duration": duration, "en_ratio": round(en_ratio(transcript), 3)}
        items.append({"external_id": rid, "fields": fields, "metadata": metadata, "suggestions": suggestions})
    return items


def bench_settings():
    """The shape of ``annotation.design.dataset_settings()`` (player custom field, context, text questions
    with pre-label suggestions, segment metadata), kept here so the benchmark does not move with it."""
    import argilla as rg

    return rg.Settings(
        fields=[rg.CustomField(name="audio", template="<audio controls src='{{record.fields.audio.src}}'></audio>"),
                rg.TextField(name="context", use_markdown=True, required=False)],
        questions=[rg.TextQuestion(name="transcript"), rg.TextQuestion(name="translation"),
                   rg.LabelQuestion(name="quality", labels=["ok", "bad_boundaries", "no_speech", "music"]),
                   rg.TextQuestion(name="start_fix", required=False), rg.TextQuestion(name="end_fix", required=False)],
        metadata=[rg.TermsMetadataProperty(name="channel"), rg.TermsMetadataProperty(name="video_id"),
                  rg.IntegerMetadataProperty(name="chunk"), rg.FloatMetadataProperty(name="start"),
                  rg.FloatMetadataProperty(name="duration"), rg.FloatMetadataProperty(name="en_ratio")],
        distribution=rg.TaskDistribution(min_submitted=1),
    )


def build(client_http: httpx.Client, info, n: int, batch: int, inflight: int) -> tuple[str, dict]:
    import argilla as rg

    rgc = rg.Argilla(api_url=info.url, api_key=info.api_key, timeout=300)
    ws = rgc.workspaces("bench") or rg.Workspace(name="bench", client=rgc).create()
    existing = rgc.datasets(DATASET, workspace=ws)
    if existing is not None:
        existing.delete()
    ds = rg.Dataset(name=DATASET, workspace=ws, settings=bench_settings(), client=rgc).create()
    ds_id = str(ds.id)
    qids = {q["name"]: q["id"] for q in client_http.get(f"/api/v1/datasets/{ds_id}/questions").json()["items"]}

    t0 = time.monotonic()

    def send(start: int) -> int:
        items = make_items(start, min(batch, n - start), qids, info.audio_url)
        r = client_http.put(f"/api/v1/datasets/{ds_id}/records/bulk", json={"items": items}, timeout=600)
        r.raise_for_status()
        return len(items)

    done = 0
    with cf.ThreadPoolExecutor(inflight) as pool:
        for k in pool.map(send, range(0, n, batch)):
            done += k
            if done % 10_000 < batch:
                rate = done / (time.monotonic() - t0)
                print(f"  {done:,} records, {rate:.0f}/s", flush=True)
    build_s = time.monotonic() - t0

    users = {}
    for name in ("bench-ann1", "bench-ann2"):
        u = rgc.users(name) or rg.User(username=name, password="bench-password-1", role="annotator",
                                       client=rgc).create()
        try:
            u.add_to_workspace(ws)
        except Exception:  # noqa: BLE001 - already a member
            pass
        tok = client_http.post("/api/v1/token", data={"username": name, "password": "bench-password-1"})
        users[name] = tok.json()["access_token"]
    # the first annotator answers 1,000 records (the UI's bulk route), so "pending" is not "everything"
    ids = [r["id"] for r in client_http.get(f"/api/v1/datasets/{ds_id}/records",
                                            params={"limit": 1000}).json()["items"]]
    qmap = {"transcript": "x", "translation": "x", "quality": "ok"}
    t1 = time.monotonic()
    for k in range(0, len(ids), 100):
        body = {"items": [{"record_id": rid, "status": "submitted",
                           "values": {q: {"value": v} for q, v in qmap.items()}} for rid in ids[k:k + 100]]}
        r = client_http.post("/api/v1/me/responses/bulk", json=body,
                             headers={"Authorization": f"Bearer {users['bench-ann1']}"})
        r.raise_for_status()
    return ds_id, {"build_s": build_s, "records_per_s": n / build_s, "responses_s": time.monotonic() - t1}


def queue_body(shape: str, rng: random.Random) -> dict:
    body = {"query": {}, "filters": {"and": [
        {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]},
        {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["pending"]},
    ]}}
    if shape in ("filter_sort", "filter_sort_text"):
        body["filters"]["and"].append({"type": "terms", "scope": {"entity": "metadata", "metadata_property": "channel"},
                                       "values": rng.sample(CHANNELS, 2)})
        body["sort"] = [{"scope": {"entity": "metadata", "metadata_property": "duration"},
                         "order": rng.choice(["asc", "desc"])}]
    if shape == "filter_sort_text":
        body["query"]["text"] = {"q": rng.choice(WORDS)}
    return body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=200, help="search calls per shape… in all (split over 3 shapes)")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--inflight", type=int, default=2)
    ap.add_argument("--page", type=int, default=10, help="records per call (the UI's focus view asks for a few)")
    ap.add_argument("--home", type=Path, default=None, help="$VECS_HOME for the server (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="leave the server running and reuse a built dataset")
    ap.add_argument("--port", type=int, default=6980)
    ap.add_argument("--database-url", default=None, help="Argilla's database (default SQLite in --home)")
    a = ap.parse_args()

    home = a.home or Path(tempfile.mkdtemp(prefix="vecs-argilla-bench-"))
    info = launcher.serve(home, port=a.port, database_url=a.database_url)
    print(f"server {info.url} ({'already running' if info.already_running else f'started in {info.startup_s:.1f} s'})")
    owner = httpx.Client(base_url=info.url, headers={"X-Argilla-Api-Key": info.api_key}, timeout=120)
    try:
        stamp = home / "argilla" / f"bench-{a.records}.json"
        if a.keep and stamp.exists():
            ds_id, build_info = json.loads(stamp.read_text()).values()
            print(f"reusing dataset {ds_id}")
        else:
            print(f"building {a.records:,} records …")
            ds_id, build_info = build(owner, info, a.records, a.batch, a.inflight)
            stamp.write_text(json.dumps({"id": ds_id, "build": build_info}))
            print(f"built in {build_info['build_s']:.0f} s ({build_info['records_per_s']:.0f} records/s)")
        tok = owner.post("/api/v1/token", data={"username": "bench-ann2", "password": "bench-password-1"}).json()
        ann = httpx.Client(base_url=info.url, headers={"Authorization": f"Bearer {tok['access_token']}"}, timeout=120)
        url = f"/api/v1/me/datasets/{ds_id}/records/search"
        rng = random.Random(1)
        shapes = ["queue", "filter_sort", "filter_sort_text"]
        for shape in shapes:  # warm-up: connection pools, SQLite page cache
            ann.post(url, json=queue_body(shape, rng), params={"offset": 0, "limit": a.page})
        per_shape = max(1, a.calls // len(shapes))
        timings: dict[str, list[float]] = {s: [] for s in shapes}
        server_ms: dict[str, list[float]] = {s: [] for s in shapes}
        totals: dict[str, list[int]] = {s: [] for s in shapes}
        for k in range(per_shape):
            for shape in shapes:
                body = queue_body(shape, rng)
                params = [("include", "responses"), ("include", "suggestions"),
                          ("offset", rng.choice([0, 0, 0, a.page, 5 * a.page, 100 * a.page])), ("limit", a.page)]
                t = time.perf_counter()
                r = ann.post(url, json=body, params=params)
                dt = (time.perf_counter() - t) * 1000
                r.raise_for_status()
                timings[shape].append(dt)
                st = r.headers.get("server-timing", "")
                if "dur=" in st:
                    server_ms[shape].append(float(st.split("dur=")[1].split(";")[0]))
                totals[shape].append(r.json()["total"])
        all_ms = [x for s in shapes for x in timings[s]]
        result = {
            "records": a.records,
            "page": a.page,
            "calls": len(all_ms),
            "engine": "vecs-sql (" + ("PostgreSQL" if a.database_url else "SQLite") + ")",
            "build": build_info,
            "p50_ms": round(statistics.median(all_ms), 1),
            "p95_ms": round(percentile(all_ms, 0.95), 1),
            "max_ms": round(max(all_ms), 1),
            "goal_p95_ms": 300,
            "shapes": {
                s: {"p50_ms": round(statistics.median(timings[s]), 1), "p95_ms": round(percentile(timings[s], 0.95), 1),
                    "server_p50_ms": round(statistics.median(server_ms[s]), 1) if server_ms[s] else None,
                    "mean_total": round(statistics.mean(totals[s]))}
                for s in shapes
            },
        }
        write_result("argilla_search" + ("_postgresql" if a.database_url else ""), result)
    finally:
        if not a.keep:
            launcher.stop(home)


if __name__ == "__main__":
    main()
