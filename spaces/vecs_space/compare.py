"""The Compare tab: the registry's speech systems side by side on one clip — transcript, translation, latency and,
with a reference, WER, CER, English-word error rate and a word-level diff."""
from __future__ import annotations

import difflib
import html
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from dataset_builder.foundation.audio import MediaError
from dataset_builder.foundation.config import SAMPLE_RATE
from modeling.loading import ModelError
from modeling.registry import SYSTEMS, system

from .config import GPU, SpaceConfig
from .live import error_html
from .models import Models


LABELS = tuple(s.label for s in SYSTEMS)  # the checkboxes, in the registry's order


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

    def run_system(self, label: str, audio: np.ndarray) -> SystemResult:
        """One system on the clip; its latency is inference only (a model is loaded once, on first use)."""
        spec = system(label)
        result = SystemResult(spec.label, " + ".join(self.models.slot(slot) for slot, _ in spec.slots))
        try:
            runner = self.models.system(spec)
            with self.models.placed(runner):
                t0 = time.perf_counter()
                heard = runner.hear([audio])[0]
                result.seconds = time.perf_counter() - t0
            result.transcript, result.translation = heard.transcript, heard.translation
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


def tab(config: SpaceConfig, models: Models, data) -> None:
    """The Compare tab's components and events; ``data`` (the Dataset tab's view) offers test examples."""
    cmp = CompareHandlers(config, models)
    with gr.Row():
        with gr.Column():
            clip = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Clip", elem_id="compare-audio")
            example = gr.Dropdown(choices=[], type="index", label="…or a test example from the dataset",
                                  elem_id="compare-example")
        with gr.Column():
            reference = gr.Textbox(label="Reference transcript (optional: enables WER/CER and the diff)", lines=2,
                                   elem_id="compare-reference")
            translation_ref = gr.Textbox(label="Reference translation (optional: enables chrF)",
                                         elem_id="compare-translation")
            systems = gr.CheckboxGroup(list(LABELS), value=list(LABELS), label="Systems", elem_id="compare-systems")
            run = gr.Button("Compare", variant="primary", elem_id="compare-run")
    status = gr.Markdown(elem_id="compare-status")
    table = gr.HTML(elem_id="compare-results")
    example.focus(lambda: gr.update(choices=data.choices()), None, example)
    example.select(lambda i: data.example(i) if i is not None else (None, "", ""), example,
                   [clip, reference, translation_ref])
    run.click(cmp.compare, [clip, reference, translation_ref, systems], [table, status],
              concurrency_limit=config.concurrency, concurrency_id="models")
