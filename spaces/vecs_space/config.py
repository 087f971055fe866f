"""Where the Space's models and data come from, and the limits that keep one visitor from starving the others."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields


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
    device: str = field(default="auto", metadata={"env": "VECS_DEVICE"})  # where requests run: auto | cpu | cuda
    dtype: str = field(default="auto", metadata={"env": "VECS_DTYPE"})
    backend: str = field(default="auto", metadata={"env": "VECS_BACKEND"})  # auto | transformers | ct2 (Whisper)

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
        config = cls(**values)
        try:
            config.runtime().check()
        except ValueError as exc:  # a GPU asked for where there is none, an unknown dtype or backend
            raise SystemExit(f"VECS_DEVICE / VECS_DTYPE / VECS_BACKEND: {exc}") from None
        return config

    def runtime(self):
        from modeling.runtime import Runtime

        return Runtime(self.device, self.dtype, self.backend)

    @property
    def pair(self) -> tuple[str, ...]:
        return tuple(x.strip() for x in self.languages.split(",") if x.strip())
