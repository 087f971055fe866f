"""Generation that cannot loop, and the batch layout training uses.

The paper's 399.78% WER came from a translate head forced to Vietnamese, ``forced_decoder_ids`` fighting
English-heavy audio, and unbounded generation. Here: ``language``/``task`` are passed to ``generate`` and the
language is chosen per clip between the configured pair (vi, en) by the model itself; ``max_new_tokens`` is
bounded by the clip's duration; a logits processor forbids continuing a run of a repeated n-gram; audio
longer than the encoder's window is cut at pauses into pieces of one window, decoded like the utterances the
model was trained on.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessorList

from dataset_builder.foundation.config import SAMPLE_RATE

from ..decoding import LoopGuard, OnDevice, Transcribing, Transcription, check_transcribe, split_at_pauses
from .model import input_seconds

PAIR = ("vi", "en")


class WhisperTranscriber(OnDevice, Transcribing):
    """Transcribe clips with a Whisper model: language from the pair, bounded, loop-guarded."""

    def __init__(self, model, processor, *, languages: tuple[str, ...] = PAIR, tokens_per_second: float | None = None,
                 num_beams: int = 1, device: str | None = None) -> None:
        # generate() warns on every call that max_new_tokens overrides the config's max_length: it is meant to
        logging.getLogger("transformers.generation.utils").setLevel(logging.ERROR)
        self.model, self.processor = model.eval(), processor
        if device is not None:
            self.model.to(device)
        self.languages = languages
        self.tok = processor.tokenizer
        gc = model.generation_config
        self.tokens_per_second = tokens_per_second or getattr(gc, "vecs_tokens_per_second", None) or 12.0
        self.num_beams = num_beams
        self.window = input_seconds(model)
        self.lang_ids = [self.tok.convert_tokens_to_ids(f"<|{lang}|>") for lang in languages]
        # a timestamp token emitted under <|notimestamps|> makes generate() seek to that time and decode the window
        # again (an undertrained model did so frame by frame: one evaluation ran for minutes), so none is sampled
        self.suppress = sorted(set(gc.suppress_tokens or ())
                               | set(range(gc.no_timestamps_token_id + 1, model.config.vocab_size)))

    def _features(self, arrays: list[np.ndarray]):
        """Log-mel features of clips of at most one window, padded to it, with the mask of the real audio."""
        inputs = self.processor.feature_extractor(arrays, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                                  return_attention_mask=True)
        dtype = next(self.model.parameters()).dtype
        return inputs.input_features.to(self.device, dtype), inputs.attention_mask.to(self.device)

    @torch.no_grad()
    def detect_language(self, features: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """Language per clip from the model's language-token logits restricted to the pair (one decoder step
        on the first window); returns the codes and the pair's probabilities."""
        window = features[..., : self.processor.feature_extractor.nb_max_frames]
        sot = self.model.generation_config.decoder_start_token_id
        start = torch.full((window.shape[0], 1), sot, dtype=torch.long, device=self.device)
        logits = self.model(input_features=window, decoder_input_ids=start).logits[:, -1, self.lang_ids]
        probs = logits.float().softmax(-1)
        return [self.languages[i] for i in probs.argmax(-1).tolist()], probs

    def max_new_tokens(self, seconds: float) -> int:
        cap = self.model.config.max_target_positions - 5
        return int(max(4, min(cap, math.ceil(seconds * self.tokens_per_second) + 8)))

    @torch.no_grad()
    def transcribe(self, arrays: list[np.ndarray], *, language: str | None = None,
                   task: str = "transcribe", batch_size: int = 16) -> list[Transcription]:
        """Each clip decoded in pieces of at most one window, cut at pauses (:func:`split_at_pauses`); pieces of
        similar length bound (rounded up to 16 tokens) are batched together, so a piece's text never depends on
        what it was batched with. A clip's language is that of its first piece."""
        check_transcribe(task)
        t0 = time.perf_counter()
        pieces = [(i, p) for i, a in enumerate(arrays) for p in split_at_pauses(a, self.window, SAMPLE_RATE)]
        cap = self.max_new_tokens(self.window)
        bound = [min(cap, 16 * math.ceil(self.max_new_tokens(len(p) / SAMPLE_RATE) / 16)) for _, p in pieces]
        texts: dict[int, str] = {}
        langs: dict[int, str] = {}
        size = max(batch_size, len(arrays))
        for limit in sorted(set(bound)):
            group = [k for k in range(len(pieces)) if bound[k] == limit]
            for b in range(0, len(group), size):
                part = group[b:b + size]
                features, _ = self._features([pieces[k][1] for k in part])
                found = [language] * len(part) if language else self.detect_language(features)[0]
                ids = self.model.generate(features, language=found, task="transcribe", num_beams=self.num_beams,
                                          max_new_tokens=limit, suppress_tokens=self.suppress,
                                          logits_processor=LogitsProcessorList([LoopGuard(prefix_length=4)]))
                ids = ids.sequences if hasattr(ids, "sequences") else ids
                for k, lang, text in zip(part, found, self.tok.batch_decode(ids, skip_special_tokens=True)):
                    texts[k], langs[k] = text.strip(), lang
        each = (time.perf_counter() - t0) / max(1, len(arrays))
        out = []
        for i, a in enumerate(arrays):
            mine = [k for k in range(len(pieces)) if pieces[k][0] == i]
            out.append(Transcription(" ".join(texts[k] for k in mine if texts[k]),
                                     langs[mine[0]] if mine else (language or self.languages[0]), each,
                                     len(a) / SAMPLE_RATE))
        return out


def load_transcriber(name_or_path: str, *, languages: tuple[str, ...] = PAIR, runtime=None):
    """A transcriber on a checkpoint (Hub id or folder) for ``runtime`` (device, dtype, backend): transformers'
    :class:`WhisperTranscriber`, or CTranslate2's when the backend is ``ct2`` (or ``auto`` and the folder is a
    CTranslate2 model). One clear line if it cannot be loaded."""
    from ..loading import ModelError
    from ..runtime import Runtime, ct2_compute_type
    from .ct2 import CT2Transcriber, CT2Whisper, ct2_folder, hub_ct2_folder
    from .model import load

    runtime = runtime or Runtime()
    folder = None
    if runtime.backend == "ct2":
        folder = ct2_folder(name_or_path) or hub_ct2_folder(name_or_path)
        if folder is None:
            raise ModelError(f"--backend ct2: {name_or_path!r} has no CTranslate2 conversion (a folder with model.bin "
                             f"or a ct2/ folder); make one with: vecs convert {name_or_path} --to ct2 --out DIR")
    elif runtime.backend == "auto" and (Path(name_or_path) / "model.bin").exists():
        folder = Path(name_or_path)
    if folder is not None:
        device = runtime.torch_device()
        return CT2Transcriber(CT2Whisper(folder, device=device, compute_type=ct2_compute_type(runtime.quantization, device)),
                              languages=languages)
    model, processor = load(name_or_path)
    return WhisperTranscriber(runtime.place(model), processor, languages=languages)
