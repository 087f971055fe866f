"""Train the E2E speech-translation model on a VECS dataset: the E2E task for the shared loop.

Best checkpoint by validation CER of the ``<2transcribe>`` output plus (100 − chrF)/100 of the ``<2translate>``
output — both tasks matter; the card carries ASR WER/CER and ST BLEU/chrF.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data import SplitData
from ..metrics import asr_scores, translation_scores
from ..text_tokenizer import UNITS
from ..loading import enable_checkpointing
from ..cards import CardSpec
from ..trainer import TrainingArguments, TrainingTask, inner_state_dict, script_main
from .collate import E2ECollator
from .decode import E2ETranslator
from .model import E2EOptions, MultitaskE2E, build_offline, build_pretrained, load


@dataclass
class E2ETrainingArguments(TrainingArguments, E2EOptions):
    encoder_name_or_path: str = field(default="facebook/wav2vec2-xls-r-300m", metadata={
        "help": "Any wav2vec2 / HuBERT / w2v-BERT checkpoint; `scratch` builds a tiny pair offline."})
    decoder_name_or_path: str = "facebook/mbart-large-50"
    model_name_or_path: str | None = field(default=None, metadata={"help": "Resume from a saved E2E model."})
    freeze_feature_encoder: bool | None = field(default=None, metadata={
        "help": "Keep the encoder's convolutional front end fixed (default: yes for a pretrained encoder, no for a "
                "scratch one, whose weights are random)."})
    freeze_encoder_steps: int = field(default=0, metadata={"help": "Train only adapter + decoder for N steps."})
    asr_weight: float = field(default=0.5, metadata={"help": "Loss weight of <2transcribe>; ST gets the rest."})
    max_seconds: float = 20.0
    ctc_weight: float = field(default=0.0, metadata={
        "help": "Weight of a CTC loss of the transcript on the encoder (0.3 makes a scratch encoder listen)."})
    scratch_vocab_size: int = 1000
    scratch_tokenizer: str = field(default="bpe", metadata={"choices": list(UNITS), "help": (
        "bpe (--scratch_vocab_size tokens) or char (one token per character; longer targets, spelled from the "
        "audio)")})
    scratch_hidden_size: int = field(default=96, metadata={"help": "scratch: the wav2vec2 encoder's width."})
    scratch_d_model: int = field(default=64, metadata={"help": "scratch: the mBART decoder's width."})
    scratch_encoder_layers: int = 2
    scratch_decoder_layers: int = 2
    learning_rate: float = 3e-4


class E2ETask(TrainingTask):
    name = "e2e"
    metric = "score"  # CER + (100 - chrF) / 100, lower is better
    need = ("transcript", "translation")
    arguments = E2ETrainingArguments
    card = CardSpec("e2e.md", tags=("speech-translation", "wav2vec2", "mbart-50"),
                    figures=("score_curve.png", "loss_curve.png"),
                    base_model_args=("encoder_name_or_path", "decoder_name_or_path"))

    def max_seconds(self) -> float:
        return self.args.max_seconds

    def setup(self, train_data: SplitData, out: Path) -> torch.nn.Module:
        a = self.args
        base = out / "base"
        if (base / "config.json").exists():
            model, fe, tok = load(str(base))
        elif a.model_name_or_path:
            model, fe, tok = load(a.model_name_or_path)
        elif a.encoder_name_or_path == "scratch":
            texts = [t for s in train_data.samples for t in (s.transcript, s.translation) if t]
            model, fe, tok = build_offline(texts, vocab_size=a.scratch_vocab_size, hidden=a.scratch_hidden_size,
                                           d_model=a.scratch_d_model, layers=a.scratch_encoder_layers,
                                           decoder_layers=a.scratch_decoder_layers, options=a,
                                           unit=a.scratch_tokenizer)
        else:
            model, fe, tok = build_pretrained(a.encoder_name_or_path, a.decoder_name_or_path, a)
        if not (base / "config.json").exists():
            model.save_pretrained(base)
            fe.save_pretrained(base)
            tok.save_pretrained(base)
        scratch = a.encoder_name_or_path == "scratch" and not a.model_name_or_path
        if a.freeze_feature_encoder or (a.freeze_feature_encoder is None and not scratch):
            model.encoder.freeze_feature_encoder()
        if a.gradient_checkpointing:
            enable_checkpointing(model)
            model.config.decoder.use_cache = False
        self.fe, self.tok = fe, tok
        self.collator = E2ECollator(fe, tok, ctc=a.ctc_weight > 0)
        rates = [len(self.collator.text_ids(t)) / max(s.duration, 0.5) for s in train_data.samples
                 for t in (s.transcript, s.translation) if t]
        model.generation_config.vecs_tokens_per_second = round(float(np.percentile(rates, 99)) * 1.25 + 1.0, 2)
        self.net = MultitaskE2E(model, a.asr_weight, a.ctc_weight)
        # held still for the first freeze_encoder_steps: every encoder parameter but the adapter's
        self._held = [p for n, p in model.encoder.named_parameters() if "adapter" not in n and p.requires_grad]
        return self.net

    def text_tokenizer(self):
        return self.tok

    def collate(self, pairs: list) -> dict:
        return self.collator(pairs)

    def before_update(self, net: MultitaskE2E, step: int) -> None:
        if step < self.args.freeze_encoder_steps:  # no gradient, no Adam update, no weight decay
            for p in self._held:
                p.grad = None

    def predict(self, net: MultitaskE2E, data: SplitData) -> list[dict]:
        was_training = net.model.training
        runner = E2ETranslator(net.model, self.fe, self.tok)
        rows = []
        size = self.args.per_device_eval_batch_size
        for i in range(0, len(data.samples), size):
            chunk = data.samples[i:i + size]
            for s, heard in zip(chunk, runner.hear([s.samples() for s in chunk])):
                rows.append({"ref": s.transcript, "hyp": heard.transcript, "ref_st": s.translation,
                             "hyp_st": heard.translation})
        net.model.train(was_training)
        return rows

    def score(self, rows: list[dict]) -> dict:
        asr = asr_scores([r["ref"] for r in rows], [r["hyp"] for r in rows])
        st = translation_scores([r["ref_st"] for r in rows], [r["hyp_st"] for r in rows])
        return {**asr, **st, "score": round(asr["cer"] + (100 - st["chrf"]) / 100, 4)}

    def save(self, net: MultitaskE2E, folder: Path, state_dict: dict | None = None) -> None:
        net.model.save_pretrained(folder, state_dict=inner_state_dict(state_dict, "model."))
        self.fe.save_pretrained(folder)
        self.tok.save_pretrained(folder)


if __name__ == "__main__":  # python -m modeling.e2e.train … (also: vecs train e2e, scripts/train_e2e.py)
    raise SystemExit(script_main(E2ETask))
