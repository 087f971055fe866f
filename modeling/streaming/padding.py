"""Universal padding (from VoicePing's bilingual mode): a constant, language-neutral clip — "Okay, bye bye." — prepended to buffers
shorter than a cutoff so the decoder and the language token have context; its words are removed afterwards.
Rendered once with espeak-ng (offline); without espeak-ng streaming runs unpadded."""
from __future__ import annotations

import functools
import shutil

import numpy as np

from dataset_builder.foundation.audio import StreamResampler
from dataset_builder.foundation.config import SAMPLE_RATE

PADDING_TEXT = "Okay, bye bye."


@functools.lru_cache(maxsize=1)
def universal_padding(gap: float = 0.3) -> np.ndarray | None:
    if shutil.which("espeak-ng") is None:
        return None
    from dataset_builder.foundation.espeak import SR, espeak

    speech = StreamResampler(SR)(espeak(PADDING_TEXT, "en-us", 160, 50), final=True)
    clip = np.concatenate([speech * (0.3 / max(1e-6, float(np.abs(speech).max()))),
                           np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)]).astype(np.float32)
    clip.setflags(write=False)
    return clip
