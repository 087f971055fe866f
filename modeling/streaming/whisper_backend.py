"""The streaming engine's ASR backend on a Whisper model: the language token restricted to the configured
pair (its probabilities read every window), the committed text as the prompt, word times from the decoder's
cross-attention (token timestamps), the same loop guard and length bound as offline decoding."""
from __future__ import annotations

import numpy as np
import torch
from transformers import LogitsProcessorList

from dataset_builder.foundation.config import SAMPLE_RATE

from ..decoding import LoopGuard
from ..whisper.decode import WhisperTranscriber
from .hypothesis import Word
from .online import Decoded, prompt_room


def ensure_alignment_heads(model) -> None:
    """Checkpoints without published alignment heads (ours, small ones) use the last decoder layer's heads."""
    gc = model.generation_config
    if not getattr(gc, "alignment_heads", None):
        layer = model.config.decoder_layers - 1
        gc.alignment_heads = [[layer, h] for h in range(model.config.decoder_attention_heads)]


class WhisperBackend:
    def __init__(self, model, processor, *, use_prompt: bool | None = None) -> None:
        """``use_prompt``: carry committed text as ``<|startofprev|>`` context. OpenAI's checkpoints were trained
        with it; a model trained here from scratch never saw it and falls silent (its generation config says
        ``vecs_prompt_trained: false``), so by default it follows the checkpoint."""
        self.transcriber = WhisperTranscriber(model, processor, languages=("vi", "en"))
        self.use_prompt = (getattr(model.generation_config, "vecs_prompt_trained", True) if use_prompt is None
                           else use_prompt)
        self.model, self.tok = self.transcriber.model, processor.tokenizer
        ensure_alignment_heads(self.model)
        self.window = self.transcriber.window
        self.suppress = self.transcriber.suppress  # timestamp tokens: word times come from the cross-attention

    @torch.no_grad()
    def decode(self, audio: np.ndarray, *, prompt: str, languages: tuple[str, ...]) -> Decoded:
        t = self.transcriber
        if tuple(languages) != t.languages:
            t.languages = tuple(languages)
            t.lang_ids = [self.tok.convert_tokens_to_ids(f"<|{lang}|>") for lang in languages]
        audio = audio[-int(self.window * SAMPLE_RATE):]
        features, mask = t._features([audio])
        langs, probs = t.detect_language(features)
        kwargs = {"attention_mask": mask}  # token timestamps (DTW) over the audio, not the padded window
        prompt_ids = None
        max_new = t.max_new_tokens(len(audio) / SAMPLE_RATE)
        room = prompt_room(self.model.config.max_target_positions, max_new)
        if prompt.strip() and self.use_prompt and room > 0:
            ids = list(self.tok.get_prompt_ids(prompt.strip()[-200:]))  # <|startofprev|> + the text's tokens
            prompt_ids = torch.tensor([ids[0], *ids[1:][-room:]], device=t.device)
            kwargs["prompt_ids"] = prompt_ids
        out = self.model.generate(
            features, language=langs[0], task="transcribe", return_token_timestamps=True, return_dict_in_generate=True,
            max_new_tokens=max_new, num_beams=1, suppress_tokens=self.suppress,
            logits_processor=LogitsProcessorList([LoopGuard(prefix_length=4 + (len(prompt_ids) if prompt_ids is not None else 0))]),
            **kwargs)
        get = out.get if isinstance(out, dict) else lambda k: getattr(out, k, None)
        seq = get("sequences")[0].tolist()
        stamps = get("token_timestamps")[0].tolist() if get("token_timestamps") is not None else None
        words = self._words(seq, stamps, len(audio) / SAMPLE_RATE)
        return Decoded(words, {lang: float(p) for lang, p in zip(t.languages, probs[0].tolist())})

    def _words(self, seq: list[int], stamps: list[float] | None, duration: float) -> list[Word]:
        """Tokens grouped into words at byte-level word starts (``Ġ``), each word decoded whole: a Vietnamese
        letter often spans two byte tokens, and decoding tokens one by one would print U+FFFD."""
        sot = self.tok.convert_tokens_to_ids("<|startoftranscript|>")
        if sot in seq:  # generate() returns <|startofprev|> + the prompt first: that text is not heard here
            first = len(seq) - seq[::-1].index(sot)
            seq, stamps = seq[first:], (stamps[first:] if stamps else stamps)
        special = set(self.tok.all_special_ids)
        last_text_id = self.tok.convert_tokens_to_ids("<|notimestamps|>")
        groups: list[tuple[list[int], float, float]] = []
        for i, tid in enumerate(seq):
            if tid in special or tid > last_text_id:
                continue
            start = stamps[i] if stamps else 0.0
            end = stamps[i + 1] if stamps and i + 1 < len(stamps) else start
            if self.tok.convert_ids_to_tokens(tid).startswith("Ġ") or not groups:
                groups.append(([tid], start, end))
            else:
                ids, s, _ = groups[-1]
                groups[-1] = (ids + [tid], s, end)
        words: list[Word] = []
        for ids, start, end in groups:
            text = self.tok.decode(ids).strip()
            if text:
                start = min(max(0.0, start), duration)
                words.append(Word(start, min(max(start, end), duration), text))
        return words
