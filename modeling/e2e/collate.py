"""E2E batches: raw 16 kHz audio normalized by the encoder's feature extractor, and 2B decoder rows — the
transcript under ``<2transcribe>`` then the translation under ``<2translate>`` for the same B clips."""
from __future__ import annotations

from dataclasses import dataclass

from dataset_builder.foundation.config import SAMPLE_RATE

from ..data import teacher_forcing
from .model import prompt_ids

PROMPT = 3  # </s> <2task> vi_VN: given, not predicted


@dataclass
class E2ECollator:
    feature_extractor: object
    tokenizer: object
    max_label_tokens: int = 250
    ctc: bool = False  # also the transcripts' ids alone, for the encoder's CTC loss

    def text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids[: self.max_label_tokens]

    def rows(self, texts: list[str], task: str) -> list[list[int]]:
        prompt = prompt_ids(self.tokenizer, task)
        return [prompt + self.text_ids(t) + [self.tokenizer.eos_token_id] if t else prompt for t in texts]

    def __call__(self, pairs: list) -> dict:
        arrays = [a for _, a in pairs]
        inputs = self.feature_extractor(arrays, sampling_rate=SAMPLE_RATE, padding=True, return_attention_mask=True,
                                        return_tensors="pt")
        seqs = self.rows([s.transcript for s, _ in pairs], "asr") + self.rows([s.translation for s, _ in pairs], "st")
        # the task and language tokens are the prompt: given, not predicted
        dec, labels, dec_mask = teacher_forcing(seqs, self.tokenizer.pad_token_id, given=PROMPT - 1)
        batch = {"input_values": inputs.input_values, "attention_mask": inputs.attention_mask,
                 "decoder_input_ids": dec, "decoder_attention_mask": dec_mask, "labels": labels}
        if self.ctc:
            batch["ctc_targets"] = [self.text_ids(s.transcript) for s, _ in pairs]
        return batch
