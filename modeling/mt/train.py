"""Fine-tune the cascade's MT model on the dataset's transcript → translation pairs (no audio read)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data import SplitData, teacher_forcing
from ..metrics import translation_scores
from ..loading import enable_checkpointing
from ..cards import CardSpec
from ..trainer import TrainingArguments, TrainingTask, inner_state_dict, script_main
from .decode import Translator
from .model import MTBatcher, build_offline, load


@dataclass
class MTTrainingArguments(TrainingArguments):
    model_name_or_path: str = field(default="facebook/mbart-large-50-many-to-many-mmt", metadata={
        "help": "mBART-50 many-to-many or NLLB by name; `scratch` builds a tiny mBART offline."})
    learning_rate: float = 5e-5
    scratch_vocab_size: int = 1000
    scratch_d_model: int = 96


class MTModule(nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, decoder_input_ids, labels):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                         labels=labels)
        return out.loss, {"ce": out.loss.detach()}


class MTTask(TrainingTask):
    name = "mt"
    metric = "chrf_error"  # 100 - chrF, lower is better
    need = ("transcript", "translation")
    arguments = MTTrainingArguments
    card = CardSpec("mt.md", tags=("translation", "mbart-50"), figures=("chrf_error_curve.png", "loss_curve.png"),
                    base_model_args=("model_name_or_path",), pipeline_tag="translation")

    def inputs(self, sample):
        return None  # text only: the audio is never decoded

    def setup(self, train_data: SplitData, out: Path) -> torch.nn.Module:
        a = self.args
        base = out / "base"
        if (base / "config.json").exists():
            model, tok = load(str(base))
        elif a.model_name_or_path == "scratch":
            texts = [t for s in train_data.samples for t in (s.transcript, s.translation) if t]
            model, tok = build_offline(texts, vocab_size=a.scratch_vocab_size, d_model=a.scratch_d_model)
        else:
            model, tok = load(a.model_name_or_path)
        if not (base / "config.json").exists():
            model.save_pretrained(base)
            tok.save_pretrained(base)
        if a.gradient_checkpointing:
            enable_checkpointing(model)
        self.tok, self.batcher = tok, MTBatcher(tok)
        return MTModule(model)

    def text_tokenizer(self):
        return self.tok

    def collate(self, pairs: list) -> dict:
        batch = self.batcher.sources([s.transcript for s, _ in pairs])
        rows = [self.batcher.prompt() + self.batcher.ids(s.translation) + [self.tok.eos_token_id] for s, _ in pairs]
        dec, labels, _ = teacher_forcing(rows, self.tok.pad_token_id, given=1)  # the target code is the prompt
        return {**batch, "decoder_input_ids": dec, "labels": labels}

    def predict(self, net: MTModule, data: SplitData) -> list[dict]:
        was_training = net.model.training
        tr = Translator(net.model, self.tok)
        rows = []
        size = self.args.per_device_eval_batch_size
        for i in range(0, len(data.samples), size):
            chunk = data.samples[i:i + size]
            rows += [{"ref": s.translation, "hyp": h} for s, h in zip(chunk, tr.translate([s.transcript for s in chunk]))]
        net.model.train(was_training)
        return rows

    def score(self, rows: list[dict]) -> dict:
        scores = translation_scores([r["ref"] for r in rows], [r["hyp"] for r in rows])
        return {**scores, "chrf_error": round(100 - scores["chrf"], 3)}

    def save(self, net: MTModule, folder: Path, state_dict: dict | None = None) -> None:
        net.model.save_pretrained(folder, state_dict=inner_state_dict(state_dict, "model."))
        self.tok.save_pretrained(folder)


if __name__ == "__main__":  # python -m modeling.mt.train … (also: vecs train mt, scripts/train_mt.py)
    raise SystemExit(script_main(MTTask))
