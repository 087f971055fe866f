"""The Live tab: the microphone streams 0.5 s chunks; the transcript is coloured by language, tentative words in
grey, the Vietnamese translation below, and a latency readout."""
from __future__ import annotations

import html

import gradio as gr
import numpy as np

from dataset_builder.foundation.audio import MediaError
from modeling.loading import ModelError

from .config import GPU, SpaceConfig
from .models import Models


EMPTY_LIVE = '<div class="vecs-live" id="live-text"></div>'


def error_html(message: str) -> str:
    return f'<div class="vecs-error">⚠ {html.escape(message)}</div>'


def _by_word(text: str) -> str:
    """English words inside a segment coloured too: the segment's tag is its matrix language, the switch is
    often one word (*mình có một <b>meeting</b>*)."""
    from dataset_builder.foundation.text import token_language

    return " ".join(f'<span class="lang-en">{html.escape(t)}</span>' if token_language(t) == "en" else html.escape(t)
                    for t in text.split())


def render_live(view) -> tuple[str, str, str]:
    """The coloured transcript (committed + tentative), the translation, and the latency readout."""
    spans = [f'<span class="lang-{html.escape(s.commit.language)}" title="{s.commit.language} '
             f'{s.commit.start:.1f}–{s.commit.end:.1f} s, +{s.commit.latency:.2f} s">{_by_word(s.commit.text)}</span>'
             for s in view.segments]
    if view.tentative:
        spans.append(f'<span class="tentative">{html.escape(view.tentative)}</span>')
    note = f'<div class="tentative">{html.escape(view.ended)}</div>' if view.ended and view.ended != "stopped" else ""
    transcript = f'<div class="vecs-live" id="live-text">{" ".join(spans)}</div>{note}'
    translation = " ".join(s.translation for s in view.segments if s.translation)
    lat = np.asarray(view.latencies)
    if len(lat):
        readout = (f"{len(lat)} commits · latency median {np.median(lat):.2f} s · p95 {np.percentile(lat, 95):.2f} s"
                   f" · last {lat[-1]:.2f} s · {view.seconds:.1f} s heard · language {view.language}")
    else:
        readout = f"{view.seconds:.1f} s heard · listening…" if view.seconds else "press Record and speak"
    return transcript, translation, readout


class LiveHandlers:
    """The microphone stream's callbacks; one :class:`LiveSession` per visitor lives in ``gr.State``."""

    def __init__(self, config: SpaceConfig, models: Models) -> None:
        self.config, self.models = config, models

    def new_session(self):
        from modeling.streaming.live import LiveSession
        from modeling.streaming.transcribe import online_processor
        from modeling.streaming.translation import TranslationStream, speech_translation, text_translation

        cfg = self.config
        asr = self.models.load("whisper", cfg.whisper)
        proc = online_processor(asr, languages=cfg.pair)
        translation, runners = None, [asr]
        if cfg.live_translation == "mt":
            runners.append(self.models.load("mt", cfg.mt))
            translation = TranslationStream(text_translation(runners[-1]))
        elif cfg.live_translation == "e2e":
            runners.append(self.models.load("e2e", cfg.e2e))
            translation = TranslationStream(speech_translation(runners[-1]))
        return LiveSession(proc, translation, max_seconds=self.config.stream_seconds, runners=tuple(runners))

    def start(self):
        return None, EMPTY_LIVE, "", "listening…"

    @GPU
    def stream(self, chunk, session):
        if chunk is None:
            return session, gr.skip(), gr.skip(), gr.skip()
        try:
            if session is None:
                session = self.new_session()
            rate, samples = chunk
            with self.models.placed(*session.runners):
                view = session.push(int(rate), np.asarray(samples))
        except (ModelError, MediaError) as exc:
            return None, error_html(str(exc)), "", ""
        return (session, *render_live(view))

    def stop(self, session):
        if session is None:
            return None, gr.skip(), gr.skip(), gr.skip()
        return (session, *render_live(session.finish()))


def tab(config: SpaceConfig, models: Models) -> None:
    """The Live tab's components and events (inside ``gr.Blocks``)."""
    live = LiveHandlers(config, models)
    session = gr.State(None)
    mic = gr.Audio(sources=["microphone"], streaming=True, label="Microphone", elem_id="live-mic")
    transcript = gr.HTML(EMPTY_LIVE, label="Transcript", elem_id="live-transcript")
    translation = gr.Textbox(label="Vietnamese translation", lines=3, interactive=False, elem_id="live-translation")
    latency = gr.Markdown("press Record and speak", elem_id="live-latency")
    gr.Markdown(f"Streams stop after {config.stream_seconds} s. Model: `{config.whisper}`, languages "
                f"{' + '.join(config.pair)}, translation: {config.live_translation}.")
    outputs = [session, transcript, translation, latency]
    mic.start_recording(live.start, None, outputs, show_progress="hidden")
    mic.stream(live.stream, [mic, session], outputs, stream_every=config.stream_every,
               time_limit=config.stream_seconds, concurrency_limit=config.concurrency, concurrency_id="models",
               show_progress="hidden")
    mic.stop_recording(live.stop, [session], outputs, show_progress="hidden")
