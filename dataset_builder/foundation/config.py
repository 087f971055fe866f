"""The one config source: every stage reads paths, rates and chunk geometry from here.

Values come from the environment (``VECS_HOME``, ``VECS_DB_URL``, …) so the same code runs a laptop
demo on SQLite and a team deployment on PostgreSQL.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_RATE = 16_000
CHUNK_SECONDS = 300
OVERLAP_SECONDS = 5
#: The longest segment a pre-labeler makes by default (``vecs prelabel --max-segment-seconds``): the paper's 25 s.
MAX_SEGMENT_SECONDS = 25.0
#: Caps per ingested source: a 12-hour stream or an 8 GB file is a mistake (or an attack), not a video.
MAX_SOURCE_HOURS = 12.0
MAX_SOURCE_GB = 8.0


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    chunk_seconds: int = CHUNK_SECONDS
    overlap_seconds: int = OVERLAP_SECONDS
    extra: dict = field(default_factory=dict)
    #: A source longer or bigger than this is refused at ingest (``VECS_MAX_SOURCE_HOURS``, ``_GB``).
    max_source_seconds: float = MAX_SOURCE_HOURS * 3600
    max_source_bytes: int = int(MAX_SOURCE_GB * 1024**3)

    @classmethod
    def from_env(cls) -> "Settings":
        home = Path(os.environ.get("VECS_HOME", "vecs_home")).expanduser().resolve()
        db_url = os.environ.get("VECS_DB_URL") or f"sqlite:///{home / 'factory.db'}"
        hours = float(os.environ.get("VECS_MAX_SOURCE_HOURS") or MAX_SOURCE_HOURS)
        gb = float(os.environ.get("VECS_MAX_SOURCE_GB") or MAX_SOURCE_GB)
        return cls(home=home, db_url=db_url, max_source_seconds=hours * 3600, max_source_bytes=int(gb * 1024**3))

    @property
    def audio_dir(self) -> Path:
        """Full-length normalized audio, one FLAC per video (the export cuts segments from here)."""
        return self.home / "audio"

    @property
    def chunks_dir(self) -> Path:
        return self.home / "chunks"

    @property
    def captions_dir(self) -> Path:
        return self.home / "captions"

    @property
    def downloads_dir(self) -> Path:
        """yt-dlp's scratch space; its files are deleted once a video is normalized."""
        return self.home / "downloads"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def chunk_samples(self) -> int:
        return self.chunk_seconds * SAMPLE_RATE

    @property
    def overlap_samples(self) -> int:
        return self.overlap_seconds * SAMPLE_RATE

    def ensure_dirs(self) -> None:
        for d in (self.home, self.audio_dir, self.chunks_dir, self.captions_dir, self.downloads_dir):
            d.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    return Settings.from_env()


#: Gemini list prices, USD per 1M tokens: (input — the audio rate, our requests are audio —, output). Thinking tokens
#: are billed as output; Batch API jobs at BATCH_PRICE of these. From Google's Gemini API pricing page
#: (ai.google.dev/gemini-api/docs/pricing): the output rates, Pro's and the batch discount were checked on 2026-11-30
#: against copies of it dated January–March 2026 (the page is out of this build machine's reach); the audio input
#: rates are as the page listed them in 2025. Override with
#: ``VECS_GEMINI_PRICES='{"gemini-2.5-flash": [1.0, 2.5]}'``; used only for the cost estimate.
PRICES_CHECKED = "2026-11-30"
DEFAULT_GEMINI_PRICES = {
    "gemini-2.5-flash": (1.00, 2.50),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash-lite": (0.30, 0.40),
}
BATCH_PRICE = 0.5
DEFAULT_TIERS = ("gemini-2.5-flash", "gemini-2.5-pro")


def gemini_prices() -> dict[str, tuple[float, float]]:
    import json

    prices = dict(DEFAULT_GEMINI_PRICES)
    override = os.environ.get("VECS_GEMINI_PRICES")
    if override:
        prices.update({k: tuple(v) for k, v in json.loads(override).items()})
    return prices


def token_cost(model: str, tokens, *, batch: bool = False, prices: dict | None = None) -> float:
    """USD for ``tokens`` = (input, output, thinking) on ``model``; unknown models cost 0 (say so with a price)."""
    pin, pout = (prices or gemini_prices()).get(model, (0.0, 0.0))
    tin, tout, thinking = (list(tokens) + [0, 0, 0])[:3]
    return (tin * pin + (tout + thinking) * pout) / 1e6 * (BATCH_PRICE if batch else 1.0)


def gemini_keys() -> list[str]:
    """Keys from ``GEMINI_API_KEYS`` (comma-separated) or ``GEMINI_API_KEY``; never logged."""
    raw = os.environ.get("GEMINI_API_KEYS") or os.environ.get("GEMINI_API_KEY") or ""
    return [k.strip() for k in raw.split(",") if k.strip()]
