"""The Dataset tab: the export's statistics and histograms, and test examples to listen to."""
from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

from dataset_builder.foundation.config import SAMPLE_RATE

from .config import SpaceConfig


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


def tab(data: DatasetView, dataset_tab) -> None:
    """The Dataset tab's components; filled when the tab (``dataset_tab``) is first opened."""
    import gradio as gr

    stats = gr.Markdown()
    figures = gr.Gallery(label="Duration and code-mixing", columns=2, height=360, object_fit="contain")
    rows = gr.Dataframe(headers=["id", "seconds", "transcript", "translation"], interactive=False, wrap=True,
                        elem_id="dataset-rows")
    player = gr.Audio(label="Example", interactive=False)
    dataset_tab.select(lambda: (data.stats_markdown(), data.figures, data.table()), None, [stats, figures, rows])

    def play(evt: gr.SelectData):
        return data.example(evt.index[0])[0]
    rows.select(play, None, player)
