"""Batches for Whisper training: log-mel features on the fly, labels with the per-segment language token,
task ``transcribe`` (never ``translate``), and timestamp targets for a share of the samples."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from dataset_builder.foundation.config import SAMPLE_RATE

from ..data import Sample, teacher_forcing


@dataclass
class WhisperCollator:
    processor: object
    max_label_tokens: int = 440
    timestamp_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        tok = self.processor.tokenizer
        self.tok = tok
        self.sot = tok.convert_tokens_to_ids("<|startoftranscript|>")
        self.transcribe = tok.convert_tokens_to_ids("<|transcribe|>")
        self.no_ts = tok.convert_tokens_to_ids("<|notimestamps|>")
        self.ts0 = self.no_ts + 1
        self.eos = tok.eos_token_id
        self.pad = tok.pad_token_id
        self.rng = random.Random(self.seed)

    def text_ids(self, text: str) -> list[int]:
        return self.tok(" " + text, add_special_tokens=False).input_ids

    def label_ids(self, sample: Sample, timestamps: bool) -> list[int]:
        lang = self.tok.convert_tokens_to_ids(f"<|{sample.language}|>")
        body = self.text_ids(sample.transcript)[: self.max_label_tokens - 6]
        if timestamps:  # <|0.00|> text <|end|>: the segment is one utterance, its end is its duration
            end = self.ts0 + min(1500, int(round(sample.duration / 0.02)))
            return [self.sot, lang, self.transcribe, self.ts0, *body, end, self.eos]
        return [self.sot, lang, self.transcribe, self.no_ts, *body, self.eos]

    def __call__(self, batch: list[tuple[Sample, np.ndarray]]) -> dict:
        arrays = [a for _, a in batch]
        feats = self.processor.feature_extractor(arrays, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        seqs = [self.label_ids(s, self.rng.random() < self.timestamp_fraction) for s, _ in batch]
        dec, labels, _ = teacher_forcing(seqs, self.pad)
        return {
            "input_features": feats.input_features,
            "decoder_input_ids": dec,
            "labels": labels,
            "frame_lengths": torch.tensor([min(len(a) // 160, feats.input_features.shape[-1]) for a in arrays]),
            "ctc_targets": [self.text_ids(s.transcript)[: self.max_label_tokens] for s, _ in batch],
        }
