"""The streaming engine's ASR backend on a Whisper model: the language token restricted to the configured
pair (its probabilities read every window), the committed text as the prompt, word times from the decoder's
cross-attention (token timestamps), the same loop guard and length bound as offline decoding."""
from __future__ import annotations

import numpy as np
import torch
from transformers import LogitsProcessorList

from dataset_builder.config import SAMPLE_RATE

from ..whisper.decode import LoopGuard, WhisperTranscriber
from .hypothesis import Word
from .online import Decoded


def ensure_alignment_heads(model) -> None:
    """Checkpoints without published alignment heads (ours, small ones) use the last decoder layer's heads."""
    gc = model.generation_config
    if not getattr(gc, "alignment_heads", None):
        layer = model.config.decoder_layers - 1
        gc.alignment_heads = [[layer, h] for h in range(model.config.decoder_attention_heads)]


class WhisperBackend:
    def __init__(self, model, processor) -> None:
        self.transcriber = WhisperTranscriber(model, processor, languages=("vi", "en"))
        self.model, self.tok = self.transcriber.model, processor.tokenizer
        ensure_alignment_heads(self.model)
        self.window = self.transcriber.window

    @torch.no_grad()
    def decode(self, audio: np.ndarray, *, prompt: str, languages: tuple[str, ...]) -> Decoded:
        t = self.transcriber
        if tuple(languages) != t.languages:
            t.languages = tuple(languages)
            t.lang_ids = [self.tok.convert_tokens_to_ids(f"<|{lang}|>") for lang in languages]
        audio = audio[-int(self.window * SAMPLE_RATE):]
        features, _ = t._features([audio], long_form=False)
        langs, probs = t.detect_language(features)
        kwargs = {}
        prompt_ids = None
        if prompt.strip():
            prompt_ids = torch.tensor(self.tok.get_prompt_ids(prompt.strip()[-200:]), device=t.device)
            kwargs["prompt_ids"] = prompt_ids
        out = self.model.generate(
            features, language=langs[0], task="transcribe", return_token_timestamps=True, return_dict_in_generate=True,
            max_new_tokens=t.max_new_tokens(len(audio) / SAMPLE_RATE), num_beams=1,
            logits_processor=LogitsProcessorList([LoopGuard(prefix_length=4 + (len(prompt_ids) if prompt_ids is not None else 0))]),
            **kwargs)
        get = out.get if isinstance(out, dict) else lambda k: getattr(out, k, None)
        seq = get("sequences")[0].tolist()
        stamps = get("token_timestamps")[0].tolist() if get("token_timestamps") is not None else None
        words = self._words(seq, stamps, len(audio) / SAMPLE_RATE)
        return Decoded(words, {lang: float(p) for lang, p in zip(t.languages, probs[0].tolist())})

    def _words(self, seq: list[int], stamps: list[float] | None, duration: float) -> list[Word]:
        special = set(self.tok.all_special_ids)
        words: list[Word] = []
        for i, tid in enumerate(seq):
            if tid in special or tid > self.tok.convert_tokens_to_ids("<|notimestamps|>"):
                continue
            piece = self.tok.decode([tid])
            start = stamps[i] if stamps else 0.0
            end = stamps[i + 1] if stamps and i + 1 < len(stamps) else start
            if piece.startswith(" ") or not words:
                if piece.strip():
                    words.append(Word(start, end, piece.strip()))
            else:
                words[-1].text += piece
                words[-1].end = end
        for w in words:  # keep times inside the window and ordered
            w.start = min(max(0.0, w.start), duration)
            w.end = min(max(w.start, w.end), duration)
        return words
