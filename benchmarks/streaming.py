"""Streaming on CPU: a >= 5-minute code-switched recording fed in real time, chunk by chunk, through the online
processor; commit latency (median, p95), real-time factor, and the streamed transcript's WER next to an offline
full-context decode of the same audio by the same model (the accuracy limit).

    python -m benchmarks.streaming [--seconds 300 --chunk 0.5 --model PATH] [--fast]

Uses the Whisper trained by ``benchmarks/whisper_cpu.py`` and the held-out test video of its synthetic corpus (its
speakers were not trained on). ``--fast`` feeds as fast as the model decodes instead of waiting for the audio
(latency is then not meaningful). Goals: median commit latency <= 1.5 s, p95 <= 3 s, streamed WER <=
1.1x offline WER.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


from benchmarks._common import RESULTS, synthetic_corpus, write_result


def test_video(corpus: Path, export: Path) -> tuple[Path, str]:
    """The corpus file of the video the export put in its test split."""
    import pyarrow.parquet as pq

    ids = {i.rsplit("-", 1)[0] for f in sorted(export.glob("data/*/test-*.parquet"))
           for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()}
    meta = json.loads((corpus / "videos.json").read_text(encoding="utf-8"))
    for v in meta["videos"]:
        if v["video_id"] in ids:
            return corpus / v["file"], v["video_id"]
    raise SystemExit(f"{export}: no test video found in the corpus")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(RESULTS / "whisper_cpu_ctc0.3" / "best"))
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--chunk", type=float, default=0.5)
    ap.add_argument("--fast", action="store_true", help="do not wait for the audio to arrive")
    args = ap.parse_args()
    if not Path(args.model).is_dir():
        raise SystemExit(f"{args.model}: no trained Whisper; run benchmarks/whisper_cpu.py first")

    import numpy as np
    import torch

    from dataset_builder.foundation.audio import load_audio
    from modeling.metrics import cer, wer
    from dataset_builder.foundation.plots import bars, histogram
    from modeling.streaming.transcribe import online_processor, transcribe_stream
    from modeling.whisper.decode import WhisperTranscriber
    from modeling.whisper.model import load

    torch.set_num_threads(2)
    corpus = synthetic_corpus(8, 16.0, 5)
    audio_path, video = test_video(corpus, RESULTS / "whisper_data_v8_m16_s5" / "export")
    samples = load_audio(audio_path, end=args.seconds)
    seconds = len(samples) / 16000
    truth = [json.loads(line) for line in (corpus / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
    reference = " ".join(t["transcript"] for t in truth if t["video_id"] == video and t["end"] <= seconds)

    t0 = time.perf_counter()
    offline = WhisperTranscriber(*load(args.model)).transcribe([samples])[0].text
    offline_s = time.perf_counter() - t0

    # the stream's clock starts with the feed (``start`` is set just before it)
    proc = online_processor(args.model, clock=None if args.fast else (lambda: time.perf_counter() - start))
    compute = []
    step = proc.process_iter

    def timed():
        t = time.perf_counter()
        out = step()
        compute.append(time.perf_counter() - t)
        return out
    proc.process_iter = timed
    buffered = []
    start = time.perf_counter()
    segments = transcribe_stream(samples, args.model, chunk=args.chunk, realtime=not args.fast, processor=proc,
                                 on_update=lambda u: buffered.append(len(proc.audio) / 16000))
    wall = time.perf_counter() - start
    streamed = " ".join(s.text for s in segments)
    lat = np.asarray([s.latency for s in segments])

    out_dir = RESULTS / "streaming"
    wer_stream, wer_offline = wer([reference], [streamed]), wer([reference], [offline])
    histogram({"commits": lat.tolist()}, out_dir / "commit_latency.png",
              title=f"Commit latency, {seconds / 60:.1f} min streamed in real time (CPU)", xlabel="seconds")
    bars({"streamed": {"WER": wer_stream}, "offline": {"WER": wer_offline}}, out_dir / "streamed_vs_offline_wer.png",
         title="Streamed vs offline full-context WER, same model and audio")
    write_result("streaming", {
        "model": args.model, "video": video, "audio_seconds": round(seconds, 1), "chunk_s": args.chunk,
        "realtime": not args.fast, "commits": len(segments),
        "latency_median_s": round(float(np.median(lat)), 3) if len(lat) else None,
        "latency_p95_s": round(float(np.percentile(lat, 95)), 3) if len(lat) else None,
        "rtf_compute": round(sum(compute) / seconds, 3), "wall_s": round(wall, 1),
        "max_buffer_s": round(max(buffered, default=0.0), 2),
        "wer_streamed": round(wer_stream, 4), "wer_offline": round(wer_offline, 4),
        "wer_ratio_streamed_over_offline": round(wer_stream / wer_offline, 3) if wer_offline else None,
        "wer_streamed_vs_offline_text": round(wer([offline], [streamed]), 4),
        "cer_streamed": round(cer([reference], [streamed]), 4), "cer_offline": round(cer([reference], [offline]), 4),
        "offline_decode_s": round(offline_s, 1),
        "goals": {"latency_median_s": 1.5, "latency_p95_s": 3.0, "wer_ratio": 1.1},
        "figures": [str(out_dir / "commit_latency.png"), str(out_dir / "streamed_vs_offline_wer.png")],
    })


if __name__ == "__main__":
    main()
