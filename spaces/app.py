"""The VECS Space: live bilingual transcription from the microphone, side-by-side model comparison, and the
dataset. Models and dataset come from the environment (``VECS_*``, see ``SpaceConfig``), default to the
project's Hub repos, and local folders work offline. Every handler turns bad input into a one-line message."""
from __future__ import annotations

import difflib
import html
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import gradio as gr
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout runs without installing vecs

from dataset_builder.foundation.audio import MediaError  # noqa: E402
from dataset_builder.foundation.config import SAMPLE_RATE  # noqa: E402
from modeling.loading import ModelError  # noqa: E402


def _zero_gpu():
    """``spaces.GPU`` on Hugging Face (ZeroGPU); a no-op decorator everywhere else (this folder is also named
    ``spaces``, so a checkout's namespace package is told apart by the missing attribute)."""
    try:
        import spaces

        if callable(getattr(spaces, "GPU", None)):
            return spaces.GPU
    except ImportError:
        pass
    return lambda fn=None, **_: fn if fn is not None else (lambda f: f)


GPU = _zero_gpu()


PRELOAD = ("all", "live", "none")


@dataclass
class SpaceConfig:
    """Where the models and data come from and the limits that keep one visitor from starving the others."""

    whisper: str = field(default="vecs-project/whisper-small-vecs", metadata={"env": "VECS_WHISPER_MODEL"})
    baseline: str = field(default="openai/whisper-small", metadata={"env": "VECS_BASELINE_MODEL"})
    e2e: str = field(default="vecs-project/e2e-xlsr-mbart50-vecs", metadata={"env": "VECS_E2E_MODEL"})
    mt: str = field(default="facebook/mbart-large-50-many-to-many-mmt", metadata={"env": "VECS_MT_MODEL"})
    dataset: str = field(default="vecs-project/vecs", metadata={"env": "VECS_DATASET"})
    dataset_config: str = field(default="verified", metadata={"env": "VECS_DATASET_CONFIG"})
    languages: str = field(default="vi,en", metadata={"env": "VECS_LANGUAGES"})
    live_translation: str = field(default="mt", metadata={"env": "VECS_LIVE_TRANSLATION"})  # mt | e2e | none
    stream_every: float = field(default=0.5, metadata={"env": "VECS_STREAM_EVERY"})
    stream_seconds: int = field(default=120, metadata={"env": "VECS_STREAM_SECONDS"})  # time_limit of a stream
    max_clip_seconds: float = field(default=120.0, metadata={"env": "VECS_MAX_CLIP_SECONDS"})
    max_upload: str = field(default="25mb", metadata={"env": "VECS_MAX_UPLOAD"})
    concurrency: int = field(default=2, metadata={"env": "VECS_CONCURRENCY"})
    queue_size: int = field(default=32, metadata={"env": "VECS_QUEUE_SIZE"})
    examples: int = field(default=50, metadata={"env": "VECS_EXAMPLES"})
    preload: str = field(default="all", metadata={"env": "VECS_PRELOAD"})  # all | live | none

    @classmethod
    def from_env(cls, env=os.environ) -> "SpaceConfig":
        values = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = type(f.default)(raw)
            except ValueError:
                raise SystemExit(f"{f.metadata['env']}={raw!r}: expected a {type(f.default).__name__}") from None
        if values.get("preload", "all") not in PRELOAD:
            raise SystemExit(f"VECS_PRELOAD={values['preload']!r}: expected one of {', '.join(PRELOAD)}")
        return cls(**values)

    @property
    def pair(self) -> tuple[str, ...]:
        return tuple(x.strip() for x in self.languages.split(",") if x.strip())


# -- models, loaded once per process and shared by all visitors ----------------------------------------------
class Models:
    """Lazy, cached loaders; a model that fails to load is remembered with its one-line reason."""

    def __init__(self, config: SpaceConfig) -> None:
        self.config = config
        self._cache: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def _get(self, kind: str, name: str, build):
        key = (kind, name)
        with self._lock:
            if key not in self._cache:
                try:
                    self._cache[key] = build(name)
                except ModelError as exc:
                    self._cache[key] = exc
            value = self._cache[key]
        if isinstance(value, Exception):
            raise value
        return value

    def whisper(self, name: str):
        from modeling.whisper.decode import WhisperTranscriber
        from modeling.whisper.model import load

        return self._get("whisper", name, lambda n: WhisperTranscriber(*load(n), languages=self.config.pair))

    def e2e(self, name: str):
        from modeling.e2e.decode import E2ETranslator
        from modeling.e2e.model import load

        return self._get("e2e", name, lambda n: E2ETranslator(*load(n)))

    def mt(self, name: str):
        from modeling.mt.model import Translator, load

        return self._get("mt", name, lambda n: Translator(*load(n)))

    def preload(self) -> list[str]:
        """Loads the models before the first visitor arrives (``VECS_PRELOAD``): importing torch and reading
        checkpoints cold takes seconds — tens on a busy machine — which the first stream would otherwise spend
        showing nothing. Returns the one-line reasons of models that cannot load; their rows say so later."""
        cfg = self.config
        if cfg.preload == "none":
            return []
        wanted = [(self.whisper, cfg.whisper)]
        if cfg.live_translation in ("mt", "e2e"):
            wanted.append((getattr(self, cfg.live_translation), getattr(cfg, cfg.live_translation)))
        if cfg.preload == "all":
            wanted += [(self.whisper, cfg.baseline), (self.e2e, cfg.e2e), (self.mt, cfg.mt)]
        problems = []
        for load, name in wanted:
            try:
                load(name)
            except ModelError as exc:
                problems.append(str(exc))
        from modeling.streaming.padding import universal_padding

        universal_padding()  # rendered once with espeak-ng, shared by every stream
        return list(dict.fromkeys(problems))


# -- Live ------------------------------------------------------------------------------------------------------
LANG_COLORS = {"vi": "#c2410c", "en": "#1d4ed8"}
CSS = """
.lang-vi { color: #c2410c; } .lang-en { color: #1d4ed8; } .tentative { color: #6b7280; font-style: italic; }
.vecs-live { font-size: 1.15em; line-height: 1.6; min-height: 4em; }
.vecs-error { color: #b91c1c; font-weight: 600; }
.diff-del { background: #fee2e2; text-decoration: line-through; } .diff-ins { background: #dcfce7; }
.diff-sub { background: #fef9c3; }
table.vecs { border-collapse: collapse; width: 100%; } table.vecs td.transcript, table.vecs td.translation { width: 32%; } table.vecs td, table.vecs th { border: 1px solid #e5e7eb;
  padding: 4px 8px; vertical-align: top; text-align: left; }
"""


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

        asr = self.models.whisper(self.config.whisper)
        proc = online_processor((asr.model, asr.processor), languages=self.config.pair)
        translation = None
        if self.config.live_translation == "mt":
            translation = TranslationStream(text_translation(self.models.mt(self.config.mt)))
        elif self.config.live_translation == "e2e":
            translation = TranslationStream(speech_translation(self.models.e2e(self.config.e2e)))
        return LiveSession(proc, translation, max_seconds=self.config.stream_seconds)

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
            view = session.push(int(rate), np.asarray(samples))
        except (ModelError, MediaError) as exc:
            return None, error_html(str(exc)), "", ""
        return (session, *render_live(view))

    def stop(self, session):
        if session is None:
            return None, gr.skip(), gr.skip(), gr.skip()
        return (session, *render_live(session.finish()))


# -- Compare ---------------------------------------------------------------------------------------------------
SYSTEMS = ("Whisper (off-the-shelf)", "VECS Whisper", "E2E", "Cascade")


def word_diff(reference: str, hypothesis: str) -> str:
    """The hypothesis against the reference, word by word: deleted, inserted and substituted words marked."""
    from dataset_builder.foundation.text import normalize_for_scoring

    ref, hyp = normalize_for_scoring(reference).split(), normalize_for_scoring(hypothesis).split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(html.escape(" ".join(hyp[j1:j2])))
        elif op == "delete":
            out.append(f'<span class="diff-del">{html.escape(" ".join(ref[i1:i2]))}</span>')
        elif op == "insert":
            out.append(f'<span class="diff-ins">{html.escape(" ".join(hyp[j1:j2]))}</span>')
        else:
            out.append(f'<span class="diff-sub" title="{html.escape(" ".join(ref[i1:i2]))}">'
                       f'{html.escape(" ".join(hyp[j1:j2]))}</span>')
    return " ".join(out)


@dataclass
class SystemResult:
    system: str
    model: str
    transcript: str = ""
    translation: str = ""
    seconds: float = 0.0
    error: str = ""
    scores: dict = field(default_factory=dict)


class CompareHandlers:
    def __init__(self, config: SpaceConfig, models: Models) -> None:
        self.config, self.models = config, models

    def clip(self, path: str | None) -> np.ndarray:
        from modeling.streaming.transcribe import read_clip

        if not path:
            raise MediaError("no audio: upload or record a clip, or pick a test example")
        if not Path(path).is_file():
            raise MediaError(f"{Path(path).name}: no such file")
        if Path(path).stat().st_size == 0:
            raise MediaError(f"{Path(path).name}: empty file")
        try:
            return read_clip(path, max_seconds=self.config.max_clip_seconds)
        except MediaError as exc:  # name the file as the visitor knows it, not Gradio's upload path
            raise MediaError(str(exc).replace(str(path), Path(path).name)) from None

    def run_system(self, system: str, audio: np.ndarray) -> SystemResult:
        """One system on the clip; its latency is inference only (a model is loaded once, on first use)."""
        c, m = self.config, self.models
        name = {SYSTEMS[0]: c.baseline, SYSTEMS[1]: c.whisper, SYSTEMS[2]: c.e2e, SYSTEMS[3]: f"{c.whisper} + {c.mt}"}[system]
        result = SystemResult(system, name)
        try:
            if system in SYSTEMS[:2]:
                asr = m.whisper(name)
                t0 = time.perf_counter()
                result.transcript = asr.transcribe([audio])[0].text
            elif system == "E2E":
                e2e = m.e2e(c.e2e)
                t0 = time.perf_counter()
                result.transcript = e2e.run([audio], "asr")[0].text
                result.translation = e2e.run([audio], "st")[0].text
            else:
                from modeling.cascade import Cascade

                cascade = Cascade(m.whisper(c.whisper), m.mt(c.mt), "spans")
                t0 = time.perf_counter()
                out = cascade.run([audio])[0]
                result.transcript, result.translation = out.transcript, out.translation
            result.seconds = time.perf_counter() - t0
        except ModelError as exc:
            result.error = str(exc)
        return result

    @GPU
    def compare(self, path, reference, translation_ref, systems):
        """Runs the chosen systems on one clip; returns the results table (HTML) and a status line."""
        from modeling.metrics import language_error_rates, translation_scores, wer, cer

        if not systems:
            raise gr.Error("choose at least one system to compare")
        try:
            audio = self.clip(path)
        except MediaError as exc:
            raise gr.Error(str(exc)) from None
        reference, translation_ref = (reference or "").strip(), (translation_ref or "").strip()
        results = [self.run_system(s, audio) for s in systems]
        for r in results:
            if r.error:
                continue
            if reference:
                r.scores.update(wer=wer([reference], [r.transcript]), cer=cer([reference], [r.transcript]),
                                en=language_error_rates([reference], [r.transcript])["en_error_rate"])
            if translation_ref and r.translation:
                r.scores["chrf"] = translation_scores([translation_ref], [r.translation])["chrf"]
        return render_compare(results, reference, len(audio) / SAMPLE_RATE), \
            f"{len(audio) / SAMPLE_RATE:.1f} s clip · {len(results)} systems"


def render_compare(results: list[SystemResult], reference: str, seconds: float) -> str:
    head = ("<tr><th>system</th><th>transcript</th><th>Vietnamese translation</th><th>latency</th>"
            + ("<th>WER</th><th>CER</th><th>English-word ER</th>" if reference else "") + "<th>chrF</th></tr>")
    rows = []
    for r in results:
        ident = f'<b>{html.escape(r.system)}</b><br><small>{html.escape(r.model)}</small>'
        if r.error:
            rows.append(f'<tr class="system-row" data-system="{html.escape(r.system)}"><td>{ident}</td>'
                        f'<td colspan="6">{error_html(r.error)}</td></tr>')
            continue
        text = word_diff(reference, r.transcript) if reference else html.escape(r.transcript)
        s = r.scores
        metrics = (f"<td>{s['wer']:.3f}</td><td>{s['cer']:.3f}</td><td>{s['en']:.3f}</td>" if reference else "")
        chrf = f"{s['chrf']:.1f}" if "chrf" in s else "—"
        rows.append(f'<tr class="system-row" data-system="{html.escape(r.system)}"><td>{ident}</td>'
                    f'<td class="transcript">{text or "<i>(no speech recognised)</i>"}</td>'
                    f'<td class="translation">{html.escape(r.translation) or "—"}</td>'
                    f"<td>{r.seconds * 1000:.0f} ms<br><small>RTF {r.seconds / max(seconds, 1e-6):.2f}</small></td>"
                    f"{metrics}<td>{chrf}</td></tr>")
    legend = ('<p><small>against the reference: <span class="diff-del">missed</span> '
              '<span class="diff-ins">inserted</span> <span class="diff-sub">substituted</span></small></p>'
              if reference else "")
    return f'<table class="vecs" id="compare-table">{head}{"".join(rows)}</table>{legend}'


# -- Dataset ---------------------------------------------------------------------------------------------------
class DatasetView:
    """A few test examples and the export report, from a local export folder or the Hub dataset."""

    def __init__(self, config: SpaceConfig) -> None:
        self.config = config
        self.config_name = config.dataset_config
        self.samples: list = []
        self.error = ""
        self.report: dict = {}
        self.figures: list[str] = []
        self._loaded = False
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            from modeling.data import DataError, load_split

            self.report, self.figures = self._report()
            configs = list((self.report.get("configs") or {}))
            if configs and self.config_name not in configs:  # e.g. nothing verified yet: show the pre-labels
                self.config_name = configs[0]
            try:
                self.samples = load_split(self.config.dataset, self.config_name, "test",
                                          need=("transcript",), limit=self.config.examples).samples
            except DataError as exc:
                self.error = str(exc)
            except Exception as exc:  # the Hub unreachable, a bad folder: the tab says why
                self.error = f"dataset {self.config.dataset!r} cannot be loaded: {str(exc).splitlines()[0][:200]}"

    def _report(self) -> tuple[dict, list[str]]:
        names = ["export_report.json", "images/duration_histogram.png", "images/cmi_histogram.png"]
        local = Path(self.config.dataset)
        paths: list[Path] = []
        if local.is_dir():
            paths = [local / n for n in names]
        else:
            try:
                from huggingface_hub import hf_hub_download

                paths = [Path(hf_hub_download(self.config.dataset, n, repo_type="dataset")) for n in names]
            except Exception:
                return {}, []
        report = json.loads(paths[0].read_text(encoding="utf-8")) if paths[0].exists() else {}
        return report, [str(p) for p in paths[1:] if p.exists()]

    def choices(self) -> list[str]:
        self.load()
        return [f"{s.id} · {s.duration:.1f} s · {s.transcript[:60]}" for s in self.samples]

    def table(self) -> list[list]:
        self.load()
        return [[s.id, round(s.duration, 2), s.transcript, s.translation] for s in self.samples]

    def example(self, index: int) -> tuple[str, str, str]:
        """A test example as a WAV file the audio components can play, with its transcript and translation."""
        import soundfile as sf

        s = self.samples[index]
        out = Path(tempfile.gettempdir()) / "vecs-space" / f"{s.id.replace('/', '_')}.wav"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".part.wav")
            sf.write(tmp, s.samples(), SAMPLE_RATE)
            tmp.replace(out)
        return str(out), s.transcript, s.translation

    def stats_markdown(self) -> str:
        self.load()
        if self.error and not self.report:
            return f"**{self.error}**"
        lines = [f"**{self.config.dataset}** — config `{self.config_name}`", ""]
        cfg = (self.report.get("configs") or {}).get(self.config_name) or {}
        splits = cfg.get("splits") or {}
        if splits:
            lines += ["| split | hours | segments | videos | mean CMI | code-switched |", "|---|---|---|---|---|---|"]
            for name, st in splits.items():
                lines.append(f"| {name} | {st.get('hours', 0):.2f} | {st.get('segments', 0)} | {st.get('videos', 0)} | "
                             f"{st.get('mean_cmi', 0):.1f} | {100 * st.get('code_switched_share', 0):.0f}% |")
        if self.error:
            lines += ["", f"_{self.error}_"]
        return "\n".join(lines)


# -- the app ---------------------------------------------------------------------------------------------------
INTRO = """# VECS — Vietnamese–English code-switched speech
Speak Vietnamese, English, or both in one sentence: the transcript is coloured by language
(<span class="lang-vi">Vietnamese</span>, <span class="lang-en">English</span>, <span class="tentative">not yet
final</span>) and each committed segment is translated to Vietnamese as it commits."""


def build_demo(config: SpaceConfig | None = None, models: Models | None = None) -> gr.Blocks:
    config = config or SpaceConfig.from_env()
    models = models or Models(config)
    live, cmp, data = LiveHandlers(config, models), CompareHandlers(config, models), DatasetView(config)

    with gr.Blocks(title="VECS") as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Live", id="live"):
            session = gr.State(None)
            mic = gr.Audio(sources=["microphone"], streaming=True, label="Microphone", elem_id="live-mic")
            transcript = gr.HTML(EMPTY_LIVE, label="Transcript",
                                 elem_id="live-transcript")
            translation = gr.Textbox(label="Vietnamese translation", lines=3, interactive=False,
                                     elem_id="live-translation")
            latency = gr.Markdown("press Record and speak", elem_id="live-latency")
            gr.Markdown(f"Streams stop after {config.stream_seconds} s. Model: `{config.whisper}`, languages "
                        f"{' + '.join(config.pair)}, translation: {config.live_translation}.")
            mic.start_recording(live.start, None, [session, transcript, translation, latency], show_progress="hidden")
            mic.stream(live.stream, [mic, session], [session, transcript, translation, latency],
                       stream_every=config.stream_every, time_limit=config.stream_seconds,
                       concurrency_limit=config.concurrency, concurrency_id="models", show_progress="hidden")
            mic.stop_recording(live.stop, [session], [session, transcript, translation, latency],
                               show_progress="hidden")

        with gr.Tab("Compare", id="compare"):
            with gr.Row():
                with gr.Column():
                    clip = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Clip",
                                    elem_id="compare-audio")
                    example = gr.Dropdown(choices=[], type="index", label="…or a test example from the dataset",
                                          elem_id="compare-example")
                with gr.Column():
                    reference = gr.Textbox(label="Reference transcript (optional: enables WER/CER and the diff)",
                                           lines=2, elem_id="compare-reference")
                    translation_ref = gr.Textbox(label="Reference translation (optional: enables chrF)")
                    systems = gr.CheckboxGroup(list(SYSTEMS), value=list(SYSTEMS), label="Systems",
                                               elem_id="compare-systems")
                    run = gr.Button("Compare", variant="primary", elem_id="compare-run")
            status = gr.Markdown(elem_id="compare-status")
            table = gr.HTML(elem_id="compare-results")
            example.focus(lambda: gr.update(choices=data.choices()), None, example)
            example.select(lambda i: data.example(i) if i is not None else (None, "", ""), example,
                           [clip, reference, translation_ref])
            run.click(cmp.compare, [clip, reference, translation_ref, systems], [table, status],
                      concurrency_limit=config.concurrency, concurrency_id="models")

        with gr.Tab("Dataset", id="dataset") as dataset_tab:
            stats = gr.Markdown()
            figures = gr.Gallery(label="Duration and code-mixing", columns=2, height=360, object_fit="contain")
            rows = gr.Dataframe(headers=["id", "seconds", "transcript", "translation"], interactive=False,
                                wrap=True, elem_id="dataset-rows")
            player = gr.Audio(label="Example", interactive=False)
            dataset_tab.select(lambda: (data.stats_markdown(), data.figures, data.table()), None,
                               [stats, figures, rows])

            def play(evt: gr.SelectData):
                return data.example(evt.index[0])[0]
            rows.select(play, None, player)
    demo.queue(default_concurrency_limit=config.concurrency, max_size=config.queue_size)
    return demo


def main() -> None:
    config = SpaceConfig.from_env()
    models = Models(config)
    for problem in models.preload():
        print(f"VECS Space: {problem}", file=sys.stderr)
    build_demo(config, models).launch(css=CSS, max_file_size=config.max_upload,
                                      server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
                                      server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))


if __name__ == "__main__":
    main()
