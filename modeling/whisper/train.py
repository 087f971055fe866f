"""Fine-tune (or train from scratch) Whisper on a VECS dataset: the Whisper task for the shared loop.

``best/`` is a plain ``WhisperForConditionalGeneration`` with its processor and card (the CTC head is a
training aid and stays out of it), kept by the lowest validation CER.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dataset_builder.foundation.config import SAMPLE_RATE

from ..data import DataError, SplitData
from ..metrics import asr_scores
from ..text_tokenizer import UNITS
from ..loading import enable_checkpointing
from ..cards import CardSpec
from ..trainer import TrainingArguments, TrainingTask, inner_state_dict, script_main
from .collate import WhisperCollator
from .decode import WhisperTranscriber
from .model import WhisperWithCTC, build_offline, load, set_input_seconds


@dataclass
class WhisperTrainingArguments(TrainingArguments):
    model_name_or_path: str = field(default="openai/whisper-small", metadata={
        "help": "Checkpoint to fine-tune; `scratch` builds a small Whisper and a tokenizer from the training text."})
    spec_augment: bool = False
    speed_perturbation: str = field(default="", metadata={
        "help": "Speed factors, one drawn per training clip (e.g. 0.9,1.0,1.1 as in Kaldi): tempo and pitch change "
                "together, as between speakers. A clip slowed past --input_seconds keeps its speed. Empty: off."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout in both stacks (regularizes small corpora)."})
    mask_time_prob: float = 0.05
    mask_feature_prob: float = 0.0
    ctc_weight: float = field(default=0.0, metadata={"help": "Weight of the encoder CTC loss (0.3 works well)."})
    input_seconds: float = field(default=30.0, metadata={"help": "Encoder input length; shorter for short segments."})
    timestamp_fraction: float = field(default=0.2, metadata={"help": "Share of samples with timestamp targets."})
    ct2_quantization: str = field(default="float16", metadata={
        "help": "best/ct2/: the model for the CTranslate2 backend, pushed with it (none: skip the conversion)."})
    scratch_d_model: int = 256
    scratch_encoder_layers: int = 4
    scratch_decoder_layers: int = 2
    scratch_vocab_size: int = 1200
    scratch_tokenizer: str = field(default="char", metadata={"choices": list(UNITS),
        "help": "bpe (byte-level BPE of --scratch_vocab_size tokens) or char (one token per character: English "
                "words are spelled from the audio, not recalled as memorized whole-word tokens)."})


class WhisperTask(TrainingTask):
    name = "whisper"
    metric = "cer"
    arguments = WhisperTrainingArguments
    card = CardSpec("whisper.md", tags=("whisper",), figures=("cer_curve.png", "loss_curve.png", "length_scatter.png"),
                    base_model_args=("model_name_or_path",))

    def max_seconds(self) -> float:
        return self.args.input_seconds

    def speed_factors(self) -> list[float]:
        text = self.args.speed_perturbation.strip()
        try:
            factors = [float(x) for x in text.split(",")] if text else []
        except ValueError:
            factors = [0.0]
        if any(not 0.5 <= f <= 2.0 for f in factors):
            raise DataError(f"--speed_perturbation {text!r}: expected comma-separated factors between 0.5 and 2")
        return factors

    def inputs(self, sample) -> np.ndarray:
        """The clip's audio, at one of the speed factors: read as if recorded at ``factor`` × 16 kHz. Linear
        interpolation (a sinc resampler cost seconds per batch on 2 cores): its aliasing at ±10 % lies above the
        log-mel's 8 kHz band."""
        audio = sample.samples()
        factor = random.choice(self.factors) if self.factors else 1.0
        if factor == 1.0 or len(audio) / factor > self.args.input_seconds * SAMPLE_RATE:
            return audio
        times = np.arange(int(len(audio) / factor)) * factor
        return np.interp(times, np.arange(len(audio)), audio).astype(np.float32)

    def _model_and_processor(self, texts: list[str], out: Path):
        args = self.args
        base = out / "base"  # what training started from, so a resumed run rebuilds exactly the same model
        if (base / "config.json").exists():
            return load(str(base))
        if args.model_name_or_path == "scratch":
            model, processor = build_offline(
                texts, input_seconds=args.input_seconds, vocab_size=args.scratch_vocab_size,
                unit=args.scratch_tokenizer, d_model=args.scratch_d_model, encoder_layers=args.scratch_encoder_layers,
                decoder_layers=args.scratch_decoder_layers)
        else:
            model, processor = load(args.model_name_or_path, input_seconds=args.input_seconds)
        model.save_pretrained(base)
        processor.save_pretrained(base)
        return model, processor

    def setup(self, train_data: SplitData, out: Path) -> torch.nn.Module:
        args = self.args
        model, processor = self._model_and_processor([s.transcript for s in train_data.samples], out)
        if model.config.max_source_positions * 0.02 > args.input_seconds + 1e-6:
            set_input_seconds(model, processor, args.input_seconds)
        # Sinusoidal, frozen in Whisper; from_pretrained leaves them trainable, which would also make a resumed
        # run's optimizer groups differ from the first run's.
        model.model.encoder.embed_positions.requires_grad_(False)
        model.config.apply_spec_augment = args.spec_augment
        model.config.mask_time_prob, model.config.mask_feature_prob = args.mask_time_prob, args.mask_feature_prob
        for module in model.modules():  # layers copy their dropout rates at construction: set them there too
            for attr in ("dropout", "activation_dropout"):
                if isinstance(getattr(module, attr, None), float):
                    setattr(module, attr, args.dropout)
        model.config.dropout = model.config.attention_dropout = model.config.activation_dropout = args.dropout
        if args.gradient_checkpointing:
            enable_checkpointing(model)
            model.config.use_cache = False
        self.factors = self.speed_factors()
        self.processor = processor
        self.collator = WhisperCollator(processor, timestamp_fraction=args.timestamp_fraction, seed=args.seed)
        # A bound for generation learned from the data: the densest labels, with a margin.
        rates = [len(self.collator.text_ids(s.transcript)) / max(s.duration, 0.5) for s in train_data.samples]
        model.generation_config.vecs_tokens_per_second = round(float(np.percentile(rates, 99)) * 1.25 + 1.0, 2)
        if args.model_name_or_path == "scratch":  # it never sees <|startofprev|>: streaming must not prompt it
            model.generation_config.vecs_prompt_trained = False
        return WhisperWithCTC(model, args.ctc_weight)

    def collate(self, pairs: list) -> dict:
        return self.collator(pairs)

    def predict(self, net: WhisperWithCTC, data: SplitData) -> list[dict]:
        model = net.whisper
        was_training = model.training
        transcriber = WhisperTranscriber(model, self.processor)
        rows = []
        size = self.args.per_device_eval_batch_size
        for i in range(0, len(data.samples), size):
            chunk = data.samples[i:i + size]
            outs = transcriber.transcribe([s.samples() for s in chunk])
            rows += [{"ref": s.transcript, "hyp": o.text} for s, o in zip(chunk, outs)]
        model.train(was_training)
        return rows

    def score(self, rows: list[dict]) -> dict:
        return asr_scores([r["ref"] for r in rows], [r["hyp"] for r in rows])

    def finalize(self, folder: Path) -> None:
        if self.args.ct2_quantization != "none":
            from .ct2 import convert

            convert(str(folder), folder / "ct2", quantization=self.args.ct2_quantization)

    def save(self, net: WhisperWithCTC, folder: Path, state_dict: dict | None = None) -> None:
        net.whisper.save_pretrained(folder, state_dict=inner_state_dict(state_dict, "whisper."))
        self.processor.save_pretrained(folder)


if __name__ == "__main__":  # python -m modeling.whisper.train … (also: vecs train whisper, scripts/train_whisper.py)
    raise SystemExit(script_main(WhisperTask))
