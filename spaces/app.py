"""The VECS Space: live bilingual transcription from the microphone, side-by-side model comparison, and the
dataset — a composition root over the ``vecs`` package. Models and dataset come from the environment (``VECS_*``,
see ``vecs_space/config.py``), default to the project's Hub repos, and local folders work offline. Every handler
turns bad input into a one-line message."""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # vecs_space/ beside this file, as on a Space
sys.path.insert(0, str(HERE.parent))  # a checkout runs without installing vecs

import gradio as gr  # noqa: E402

from vecs_space import compare, dataset, live  # noqa: E402
from vecs_space.config import SpaceConfig  # noqa: E402
from vecs_space.models import Models  # noqa: E402

CSS = """
.lang-vi { color: #c2410c; } .lang-en { color: #1d4ed8; } .tentative { color: #6b7280; font-style: italic; }
.vecs-live { font-size: 1.15em; line-height: 1.6; min-height: 4em; }
.vecs-error { color: #b91c1c; font-weight: 600; }
.diff-del { background: #fee2e2; text-decoration: line-through; } .diff-ins { background: #dcfce7; }
.diff-sub { background: #fef9c3; }
table.vecs { border-collapse: collapse; width: 100%; } table.vecs td.transcript, table.vecs td.translation { width: 32%; } table.vecs td, table.vecs th { border: 1px solid #e5e7eb;
  padding: 4px 8px; vertical-align: top; text-align: left; }
"""

INTRO = """# VECS — Vietnamese–English code-switched speech
Speak Vietnamese, English, or both in one sentence: the transcript is coloured by language
(<span class="lang-vi">Vietnamese</span>, <span class="lang-en">English</span>, <span class="tentative">not yet
final</span>) and each committed segment is translated to Vietnamese as it commits."""


def build_demo(config: SpaceConfig | None = None, models: Models | None = None) -> gr.Blocks:
    config = config or SpaceConfig.from_env()
    models = models or Models(config)
    data = dataset.DatasetView(config)
    with gr.Blocks(title="VECS") as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Live", id="live"):
            live.tab(config, models)
        with gr.Tab("Compare", id="compare"):
            compare.tab(config, models, data)
        with gr.Tab("Dataset", id="dataset") as dataset_tab:
            dataset.tab(data, dataset_tab)
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
