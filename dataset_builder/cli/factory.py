"""The factory's stages as ``vecs`` subcommands: synth, ingest, prelabel, status, export.

Each stage is imported when its command runs, so ``vecs status`` stays instant and a machine without torch can
still run the factory.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from dataset_builder.foundation.config import (DEFAULT_TIERS, MAX_SEGMENT_SECONDS, PRICES_CHECKED, gemini_keys,
                                              gemini_prices, get_settings, token_cost)

from ._console import err, out


def synth(
    out_dir: Path = typer.Argument(..., help="Folder for the synthetic corpus."),
    videos: int = typer.Option(4, "--videos", min=1, help="Number of videos."),
    minutes: float = typer.Option(2.0, "--minutes", min=0.05, help="Minutes of audio per video."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same corpus)."),
    channels: int = typer.Option(2, "--channels", min=1, help="Number of channels."),
    fmt: str = typer.Option("m4a", "--format", help="m4a (AAC 44.1 kHz stereo) or webm (Opus)."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Videos synthesized in parallel."),
) -> None:
    """Synthesize code-switched "videos" with espeak-ng: audio, WebVTT captions, truth.jsonl, videos.json."""
    from dataset_builder.synth import synthesize_corpus

    if fmt not in ("m4a", "webm"):
        raise typer.BadParameter(f"--format {fmt!r}: expected m4a or webm")
    meta = synthesize_corpus(out_dir, videos=videos, minutes=minutes, seed=seed, channels=channels, fmt=fmt, jobs=jobs)
    total = sum(v["duration"] for v in meta["videos"])
    out.print(f"{len(meta['videos'])} videos, {total / 60:.1f} min of audio in {out_dir}")


def ingest(
    sources: Optional[List[str]] = typer.Argument(None, help="YouTube video/playlist/channel URLs, any yt-dlp URL, "
                                                 "local paths or file:// URLs."),
    channel: Optional[str] = typer.Option(None, "--channel", help="Channel name to file the videos under."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Videos processed in parallel."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar per video."),
    license_filter: Optional[str] = typer.Option(None, "--license", help="cc: keep only Creative Commons videos "
                                                 "(the others, and those whose license is unknown, are skipped)."),
    check: bool = typer.Option(False, "--check", help="Say what yt-dlp reports about its YouTube support (its "
                               "version, the JavaScript runtime and EJS scripts it found) and exit."),
) -> None:
    """Download, normalize to 16 kHz mono FLAC, verify and cut exact 300 s + 5 s chunks."""
    from dataset_builder.ingest import ingest as run_ingest
    from dataset_builder.ingest.fetch import NO_RUNTIME, UnsafeToolError, youtube_readiness

    if check:
        ready = youtube_readiness()
        out.print(f"yt-dlp {ready['yt_dlp']} · JS runtime: {ready['js_runtime'] or 'none'} · "
                  f"EJS: {ready['ejs'] or 'none'}", highlight=False)
        if not ready["js_runtime"] or not ready["ejs"]:
            err.print(f"[yellow]warning:[/yellow] {NO_RUNTIME}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        return
    if not sources:
        raise typer.BadParameter("give at least one source (a URL, a file or a folder)")
    if license_filter not in (None, "cc"):
        raise typer.BadParameter(f"--license {license_filter!r}: expected cc")
    settings = get_settings()
    try:
        outcomes = run_ingest(sources, channel=channel, jobs=jobs, settings=settings, progress=progress, console=err,
                              license_filter=license_filter)
    except UnsafeToolError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    failed = 0
    for o in outcomes:
        if o.status == "failed":
            failed += 1
            err.print(f"[red]FAILED[/red] {o.message}", markup=True, highlight=False, soft_wrap=True)
        elif o.status == "skipped":
            err.print(f"skipped {o.source}: {o.message}", highlight=False, soft_wrap=True)
        else:
            err.print(f"ingested {o.video_id}: {o.duration:.1f} s, {o.chunks} chunks", highlight=False)
        for warning in o.warnings:
            err.print(f"  yt-dlp: {warning}", highlight=False, soft_wrap=True)
    ok = sum(o.status == "ingested" for o in outcomes)
    err.print(f"{ok} ingested, {sum(o.status == 'skipped' for o in outcomes)} skipped, {failed} failed")
    if failed:
        raise typer.Exit(1)


def prelabel(
    engine: str = typer.Option("gemini", "--engine", help="gemini (audio → Gemini) or captions (stored captions)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Chunks in flight at once."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Label at most N chunks."),
    tiers: str = typer.Option(",".join(DEFAULT_TIERS), "--tiers", help="Model tiers, cheapest first."),
    base_url: Optional[str] = typer.Option(None, "--base-url", envvar="VECS_GEMINI_BASE_URL",
                                           help="Gemini API base URL (a gateway or a local server)."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds before a request counts as failed."),
    rpm: Optional[str] = typer.Option(None, "--rpm", help="Known per-key limits, e.g. 'gemini-2.5-flash=10,gemini-2.5-pro=5'."),
    window: float = typer.Option(60.0, "--quota-window", help="Length of the quota window in seconds."),
    refine: bool = typer.Option(True, "--refine/--no-refine", help="Snap times to silero-vad speech boundaries."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Put failed chunks back in the queue first."),
    mode: str = typer.Option("online", "--mode", help="online (a request per chunk) or batch (Gemini's Batch API: "
                             "half price, answered within hours; run again to collect, or --wait)."),
    wait: bool = typer.Option(False, "--wait/--no-wait", help="batch: poll until every job is collected."),
    poll: float = typer.Option(60.0, "--poll", min=0.1, help="batch: seconds between looks at running jobs."),
    thinking_budget: Optional[int] = typer.Option(None, "--thinking-budget", min=0, help="Thinking tokens a reply "
                                                  "may use (billed as output; 0 turns thinking off where the model "
                                                  "allows). Default: the model's own."),
    max_segment: float = typer.Option(MAX_SEGMENT_SECONDS, "--max-segment-seconds", min=2.0,
                                      help="Longest segment to make (captions: cues are merged up to it; gemini: "
                                      "asked for in the prompt). Lower it for models with short inputs, e.g. 6 for a "
                                      "scratch Whisper on 6 s."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Pre-label pending chunks: transcript + Vietnamese translation, chunk-relative times."""
    import asyncio

    from dataset_builder.prelabel.runner import retry_failed as requeue, run_engine

    settings = get_settings()
    if mode not in ("online", "batch"):
        raise typer.BadParameter(f"--mode {mode!r}: expected online or batch")
    if mode == "batch" and engine != "gemini":
        raise typer.BadParameter("--mode batch needs --engine gemini (the Batch API is Gemini's)")
    if engine == "gemini":
        from dataset_builder.prelabel.gemini import GeminiCaller, GeminiEngine
        from dataset_builder.prelabel.keypool import KeyPool, NoKeysError

        rpm_map = {}
        for part in (rpm or "").split(","):
            if part.strip():
                model, _, n = part.partition("=")
                rpm_map[model.strip()] = int(n)
        try:
            pool = KeyPool(gemini_keys(), [t.strip() for t in tiers.split(",") if t.strip()],
                           settings=settings, window=window, rpm=rpm_map)
        except NoKeysError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2)
        refiner = None
        if refine:
            from dataset_builder.prelabel.refine import load_refiner

            refiner = load_refiner(warn=lambda msg: err.print(f"[yellow]warning:[/yellow] {msg}"))
        caller = GeminiCaller(base_url=base_url, timeout_s=timeout, thinking_budget=thinking_budget,
                              max_segment_s=max_segment)
        runner_engine = GeminiEngine(pool, caller, settings, refiner=refiner)
    elif engine == "captions":
        from dataset_builder.prelabel.captions import CaptionsEngine

        runner_engine = CaptionsEngine(settings.home, max_segment_s=max_segment)
    else:
        raise typer.BadParameter(f"--engine {engine!r}: expected gemini or captions")
    settings.ensure_dirs()
    if retry_failed:
        requeue(settings)
    if mode == "batch":
        from dataset_builder.prelabel.batch import BatchRunner, run_batch

        run, report = asyncio.run(run_batch(BatchRunner(pool, caller, settings, refiner=refiner), limit=limit,
                                            wait=wait, poll_s=poll, console=err if progress else None))
        err.print(f"batch: {report.submitted_jobs} jobs submitted ({report.submitted_chunks} chunks), "
                  f"{report.collected_jobs} collected, {report.open_jobs} still running"
                  + (" — run this again to collect them" if report.open_jobs else "")
                  + (f", {report.requeued} chunks back in the queue" if report.requeued else ""))
    else:
        run = asyncio.run(run_engine(runner_engine, settings, concurrency=concurrency, limit=limit,
                                     progress=progress, console=err))
    _print_prelabel_summary(run)
    if run.stopped:
        err.print(f"[red]error:[/red] the run stopped: {run.stopped}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    if run.failed:
        raise typer.Exit(1)


def remove(
    video_ids: List[str] = typer.Argument(..., help="video_id values (the dataset's video_id column)."),
) -> None:
    """Take recordings out of the factory (a takedown request): rows, audio, chunks, captions and annotation
    clips. Export again and push: the push replaces the dataset on the Hub in one commit."""
    from annotation.clips import remove_clips
    from dataset_builder.ingest.pipeline import remove_videos

    settings = get_settings()
    results = remove_videos(settings, video_ids)
    for video_id, what in results.items():
        if what == "removed":
            remove_clips(settings.home, video_id)
        err.print(f"{video_id}: {what}", highlight=False)
    removed = sum(what == "removed" for what in results.values())
    err.print(f"{removed} removed; now `vecs export … --push-to-hub …` publishes the dataset without them")
    if removed < len(results):
        raise typer.Exit(1)


def _print_prelabel_summary(run) -> None:
    elapsed = time.perf_counter() - run.started
    prices = gemini_prices()
    err.print(
        f"{run.done} chunks pre-labeled ({run.audio_s / 3600:.2f} h of audio), {run.failed} failed, "
        f"{run.requests} requests, {run.rate_limited} rate-limited, {run.server_errors} server errors/timeouts, "
        f"{elapsed:.1f} s"
    )
    total_cost = 0.0
    for batch, table in ((False, run.tokens), (True, run.batch_tokens)):
        for model, tokens in sorted(table.items()):
            cost = token_cost(model, tokens, batch=batch, prices=prices)
            total_cost += cost
            tin, tout, thinking = tokens
            err.print(f"  {model}{' (batch, half price)' if batch else ''}: {tin:,} input + {tout:,} output"
                      f"{f' + {thinking:,} thinking' if thinking else ''} tokens ≈ ${cost:.4f}")
    if run.tokens or run.batch_tokens:
        err.print(f"  estimated cost: ${total_cost:.4f} (list prices checked {PRICES_CHECKED}; VECS_GEMINI_PRICES "
                  "overrides them)")
    if run.repairs:
        err.print("  repaired: " + ", ".join(f"{k} {v}" for k, v in sorted(run.repairs.items())))
    if run.drops:
        err.print("  dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(run.drops.items())))
    if run.claims_lost:
        err.print(f"  {run.claims_lost} chunks taken over by another worker while this one labeled them: "
                  "their labels were not written")
    if run.kept_answers:
        err.print(f"  {run.kept_answers} chunks kept as they were: people had been sent or answered their segments")
    if run.failure_reasons:
        err.print("  failed: " + ", ".join(f"{k} {v}" for k, v in sorted(run.failure_reasons.items())))
    for video_id, index, reason in run.failures[:20]:
        err.print(f"[red]FAILED[/red] chunk {video_id}#{index}: {reason}", highlight=False, soft_wrap=True)


def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    videos: bool = typer.Option(False, "--videos", help="List every video under its channel."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Write the dashboard as an HTML page."),
    serve_port: Optional[int] = typer.Option(None, "--serve", help="Serve the live dashboard on this port."),
) -> None:
    """Channels → videos → chunks by status; hours ingested, pre-labeled and verified; annotators."""
    from dataset_builder.status import status as collect

    settings = get_settings()
    if serve_port is not None:
        from dataset_builder.dashboard import serve

        serve(settings, port=serve_port)
        err.print(f"dashboard: http://127.0.0.1:{serve_port}/ (Ctrl+C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return
    data = collect(settings)
    if html_out is not None:
        from dataset_builder.foundation.atomic import write_text_atomic
        from dataset_builder.dashboard import render

        write_text_atomic(html_out, render(data))
        err.print(f"wrote {html_out}")
        return
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return
    t = data["totals"]
    out.print(
        f"[bold]{t['channels']} channels · {t['videos']} videos · {t['hours']:.2f} h ingested · "
        f"{t['prelabeled_hours']:.2f} h pre-labeled · {t['verified_hours']:.2f} h verified[/bold]"
    )
    table = Table("Channel", "Videos", "Hours", "Pending", "Pre-labeled", "Failed", "Verified", "Verified h", "State")
    for ch in data["channels"]:
        c = ch["chunks"]
        table.add_row(
            ch["name"], str(ch["videos"]), f"{ch['hours']:.2f}",
            str(c["pending"] + c["prelabeling"] + c["batched"]), str(c["prelabeled"] + c["pushed"]), str(c["failed"]),
            str(c["verified"]), f"{ch['verified_hours']:.2f}", ch["state"],
        )
    out.print(table)
    if data["annotators"]:
        at = Table("Annotator", "Segments", "Discarded", "Audio h", "Segments/h", title="Annotators")
        for a in data["annotators"]:
            at.add_row(a["annotator"], str(a["segments"]), str(a["discarded"]), f"{a['audio_hours']:.3f}",
                       "" if a["segments_per_hour"] is None else str(a["segments_per_hour"]))
        out.print(at)
    if videos:
        for ch in data["channels"]:
            vt = Table("Video", "Title", "Duration", "Chunks", "Segments", "Progress", title=ch["name"])
            for v in ch["video_list"]:
                vt.add_row(
                    v["video_id"], (v["title"] or "")[:50], f"{v['duration'] / 60:.1f} min",
                    str(v["chunk_count"]), f"{v['verified_segments']}/{v['segments']}", v["progress"],
                )
            out.print(vt)


def export_cmd(
    out_dir: Path = typer.Argument(..., help="Output folder: a Hub dataset repo (Parquet shards + README card)."),
    config: str = typer.Option("all", "--config", help="verified, prelabeled or all."),
    group_by: str = typer.Option("video", "--group-by", help="Keep each video (or channel) in one split."),
    splits: str = typer.Option("80/10/10", "--splits", help="train/validation/test shares of the hours."),
    seed: int = typer.Option(42, "--seed"),
    min_duration: float = typer.Option(0.5, "--min-duration"),
    max_duration: float = typer.Option(30.0, "--max-duration"),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Upload the folder to this dataset repo id."),
    private: bool = typer.Option(False, "--private", help="Create the Hub repo private."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be written and uploaded; write nothing."),
    license_: str = typer.Option("other", "--license", help="The card's license (a Hub license id, e.g. cc-by-4.0 "
                                 "when every source is Creative Commons: vecs ingest --license cc). Default: other, "
                                 "with the statement that the audio's rights stay with its owners."),
    gated_prompt: Optional[str] = typer.Option(None, "--gated-prompt", help="Make the Hub repo gated: users accept "
                                               "this text (extra_gated_prompt) before they download."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Export guillotined, sanitized, video-disjoint splits as Parquet with embedded audio."""
    from dataset_builder.export.plan import CONFIGS, build_plan
    from dataset_builder.export.splits import check_leakage, parse_ratios

    if config not in (*CONFIGS, "all"):
        raise typer.BadParameter(f"--config {config!r}: expected verified, prelabeled or all")
    try:
        ratios = parse_ratios(splits)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    from dataset_builder.export.builder import write_parquet
    from dataset_builder.export.card import write_card
    from dataset_builder.export.report import REPORT, build_report, write_report

    started = time.perf_counter()
    plan = build_plan(get_settings(), group_by=group_by, ratios=ratios, seed=seed, min_duration=min_duration,
                      max_duration=max_duration, persist=not dry_run)
    configs = CONFIGS if config == "all" else (config,)
    for c in configs:  # the leakage check fails the export before anything is written
        check_leakage((e.video_id if group_by == "video" else e.channel, split)
                      for split, exs in plan.examples[c].items() for e in exs)
    report = build_report(plan, configs, leakage_ok=True, options={
        "config": config, "group_by": group_by, "splits": ratios, "seed": seed,
        "min_duration": min_duration, "max_duration": max_duration})
    table = Table("Config", "Split", "Segments", "Hours", "Videos", "Channels")
    for c in configs:
        for split, st in report["configs"][c]["splits"].items():
            table.add_row(c, split, str(st["segments"]), f"{st['hours']:.3f}", str(st["videos"]), str(st["channels"]))
    out.print(table)
    for c in configs:
        out.print(f"{c}: kept {report['configs'][c]['kept']}, dropped "
                  + (", ".join(f"{k} {v}" for k, v in report["configs"][c]["dropped"].items()) or "none"))
    out.print(f"leakage check: passed, no {group_by} in two splits")
    if dry_run:
        from dataset_builder.export.hub import planned_files

        target = f"to {push_to_hub}" if push_to_hub else "(no --push-to-hub)"
        out.print(f"dry run: would write in {out_dir} and upload {target}:")
        for rel in planned_files(plan, configs):
            out.print(f"  {rel}")
        return
    from dataset_builder.export.folder import staged

    # Built beside the folder and swapped in whole: a crash leaves the previous export, never a mix.
    with staged(out_dir) as stage:
        written, figures = write_parquet(plan, stage, configs, progress=progress, figures=True)
        elapsed = time.perf_counter() - started
        hours = sum(sum(report["configs"][c]["hours"].values()) for c in configs)
        report["timing"] = {"seconds": round(elapsed, 3), "audio_hours": round(hours, 4),
                            "hours_per_minute": round(hours / (elapsed / 60), 1) if elapsed else None}
        write_report(stage, report)
        write_card(stage, plan, written, report, figures, license=license_, gated_prompt=gated_prompt)
    out.print(f"exported {hours:.2f} h of audio in {elapsed:.1f} s ({report['timing']['hours_per_minute']} h/min); "
              f"report: {out_dir / REPORT}")
    out.print(f"wrote {out_dir} (load it with datasets.load_dataset({str(out_dir)!r}))")
    if push_to_hub:
        from dataset_builder.export.hub import push_export

        try:
            url, change = push_export(out_dir, push_to_hub, private=private)
        except Exception as exc:  # network, auth, permissions: one line, never the token
            err.print(f"[red]error:[/red] upload to {push_to_hub} failed: {type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:200] if str(exc) else ''}", highlight=False)
            raise typer.Exit(1)
        out.print(f"pushed to {url} in one commit: {change['added']} files added or updated, "
                  f"{change['deleted']} no longer in the export deleted")
