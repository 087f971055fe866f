"""End-to-end speech translation: a multilingual speech encoder (XLS-R by default) with a downsampling
adapter, the mBART-50 decoder, and two task prompts — ``<2transcribe>`` and ``<2translate>`` — in one model.

The paper's E2E model stalled (97.51 % WER, 1.34 BLEU) with an English-only encoder and a collator that
duplicated the batch and ran two backward passes through one graph, which forced gradient checkpointing off
and batch size 1. Here a clip is encoded once, its encoder states are shared by both task prefixes, both
targets are decoded in one batched decoder pass, the weighted losses are summed, and there is one backward.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    MBartConfig,
    MBartForCausalLM,
    SpeechEncoderDecoderModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
)
from transformers.modeling_outputs import BaseModelOutput

from dataset_builder.foundation.config import SAMPLE_RATE

from ..ctc import CTCHead
from ..data import IGNORE
from ..loading import load_or_fail
from .tokenizer import TARGET_LANG, TASKS, load_tokenizer, train_tokenizer


@dataclass(kw_only=True)
class E2EOptions:
    """The architecture options of the E2E model (the training arguments inherit them)."""

    adapter_layers: int = 3
    adapter_stride: int = 2
    adapter_kernel_size: int = 3
    layerdrop: float = 0.05
    mask_time_prob: float = 0.05


def _configure(model: SpeechEncoderDecoderModel, tok) -> None:
    model.decoder.resize_token_embeddings(len(tok))
    model.config.decoder_start_token_id = tok.eos_token_id
    model.config.pad_token_id = tok.pad_token_id
    model.config.eos_token_id = tok.eos_token_id
    model.config.decoder.vocab_size = model.config.vocab_size = len(tok)
    gc = model.generation_config
    gc.decoder_start_token_id, gc.pad_token_id, gc.eos_token_id = tok.eos_token_id, tok.pad_token_id, tok.eos_token_id
    gc.forced_bos_token_id = None  # the prompt (task, language) is given as decoder_input_ids
    gc.max_length = None


def build_pretrained(encoder: str = "facebook/wav2vec2-xls-r-300m", decoder: str = "facebook/mbart-large-50",
                     options: E2EOptions | None = None):
    """XLS-R (or any wav2vec2 / HuBERT / w2v-BERT) + mBART-50, adapter on the encoder; downloads by name."""
    o = options or E2EOptions()
    fe = load_or_fail(encoder, AutoFeatureExtractor.from_pretrained, "encoder")
    tok = load_or_fail(decoder, load_tokenizer, "decoder")
    model = load_or_fail(encoder, lambda n: SpeechEncoderDecoderModel.from_encoder_decoder_pretrained(
        n, decoder, encoder_add_adapter=True, encoder_num_adapter_layers=o.adapter_layers,
        encoder_adapter_stride=o.adapter_stride, encoder_adapter_kernel_size=o.adapter_kernel_size,
        encoder_layerdrop=o.layerdrop, encoder_mask_time_prob=o.mask_time_prob), "encoder")
    _configure(model, tok)
    return model, fe, tok


def build_offline(texts, *, vocab_size: int = 1000, hidden: int = 96, d_model: int = 64, layers: int = 2,
                  decoder_layers: int | None = None, options: E2EOptions | None = None, unit: str = "bpe"):
    """A small wav2vec2 + mBART pair from configs and a tokenizer trained on ``texts`` (tests, ``make demo``,
    the CPU benchmarks). With ``hidden`` ≠ ``d_model`` the encoder→decoder projection is exercised too."""
    decoder_layers = decoder_layers or layers
    o = options or E2EOptions()
    tok = train_tokenizer(texts, vocab_size=vocab_size, unit=unit)
    enc_cfg = Wav2Vec2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                             intermediate_size=2 * hidden, conv_dim=(64,) * 7, do_stable_layer_norm=True,
                             feat_extract_norm="layer", add_adapter=True, num_adapter_layers=o.adapter_layers,
                             adapter_stride=o.adapter_stride, adapter_kernel_size=o.adapter_kernel_size,
                             layerdrop=o.layerdrop, mask_time_prob=o.mask_time_prob, mask_time_length=2,
                             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    dec_cfg = MBartConfig(vocab_size=len(tok), d_model=d_model, decoder_layers=decoder_layers, encoder_layers=layers,
                          decoder_attention_heads=4, encoder_attention_heads=4, decoder_ffn_dim=2 * d_model,
                          encoder_ffn_dim=2 * d_model, max_position_embeddings=512 if unit == "char" else 256, is_decoder=True,
                          add_cross_attention=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                          bos_token_id=tok.bos_token_id, decoder_start_token_id=tok.eos_token_id, scale_embedding=True)
    model = SpeechEncoderDecoderModel(encoder=Wav2Vec2Model(enc_cfg), decoder=MBartForCausalLM(dec_cfg))
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True,
                                  return_attention_mask=True)
    _configure(model, tok)
    return model, fe, tok


def load(name_or_path: str):
    """``(model, feature_extractor, tokenizer)`` of a saved E2E model; one clear line if it cannot be loaded."""
    return load_or_fail(name_or_path, lambda n: (SpeechEncoderDecoderModel.from_pretrained(n),
                                                 AutoFeatureExtractor.from_pretrained(n), load_tokenizer(n)))


def is_e2e(name_or_path: str) -> bool:
    """True for a SpeechEncoderDecoder checkpoint (so ``vecs evaluate`` can tell E2E from Whisper)."""
    try:
        return AutoConfig.from_pretrained(name_or_path).model_type == "speech-encoder-decoder"
    except Exception:
        return False


def prompt_ids(tok, task: str) -> list[int]:
    """``</s> <2task> vi_VN``: decoder start, the task, the target language code."""
    return [tok.eos_token_id, tok.convert_tokens_to_ids(TASKS[task]), tok.convert_tokens_to_ids(TARGET_LANG)]


class MultitaskE2E(nn.Module):
    """One encoder pass, both tasks decoded in one batched decoder pass, one weighted loss; optionally
    ``ctc_weight`` · CTC of the transcript on the encoder's frames before the adapter (50 per second: the
    adapter's 6 per second are too few for a transcript's tokens)."""

    def __init__(self, model: SpeechEncoderDecoderModel, asr_weight: float = 0.5, ctc_weight: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.asr_weight = asr_weight
        self.ctc_weight = ctc_weight
        self.ctc = (CTCHead(model.config.encoder.hidden_size, model.config.decoder.vocab_size)
                    if ctc_weight > 0 else None)

    def forward(self, input_values, attention_mask, decoder_input_ids, decoder_attention_mask, labels,
                ctc_targets=None):
        b = input_values.shape[0]
        use_ctc = self.ctc is not None and ctc_targets is not None
        encoded = self.model.encoder(input_values, attention_mask=attention_mask, output_hidden_states=use_ctc)
        enc = encoded.last_hidden_state
        # rows [0, b) are <2transcribe>, [b, 2b) are <2translate>: the same encoder states, no recomputation
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=torch.cat([enc, enc])),
                         attention_mask=torch.cat([attention_mask, attention_mask]),
                         decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_attention_mask,
                         use_cache=False)
        logits = out.logits.float()
        per_token = nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE,
                                                reduction="none")
        mask = labels.ne(IGNORE).float()
        asr = (per_token[:b] * mask[:b]).sum() / mask[:b].sum().clamp(min=1)
        st = (per_token[b:] * mask[b:]).sum() / mask[b:].sum().clamp(min=1)
        loss = self.asr_weight * asr + (1 - self.asr_weight) * st
        parts = {"asr": asr.detach(), "st": st.detach()}
        if use_ctc:
            frames = self.model.encoder._get_feat_extract_output_lengths(attention_mask.sum(-1), add_adapter=False)
            ctc = self.ctc.loss(encoded.hidden_states[-1], frames, ctc_targets)
            loss = (1 - self.ctc_weight) * loss + self.ctc_weight * ctc
            parts["ctc"] = ctc.detach()
        return loss, parts


class DuplicatedBatchE2E(nn.Module):
    """The paper's scheme, kept only for the benchmark: the batch duplicated, encoder and decoder run once per
    task, a backward pass per task (the caller calls ``backward_each``)."""

    def __init__(self, model: SpeechEncoderDecoderModel, asr_weight: float = 0.5) -> None:
        super().__init__()
        self.model = model
        self.asr_weight = asr_weight

    def backward_each(self, input_values, attention_mask, decoder_input_ids, decoder_attention_mask, labels,
                      backward) -> torch.Tensor:
        b = input_values.shape[0]
        total = 0.0
        for half, w in ((slice(0, b), self.asr_weight), (slice(b, 2 * b), 1 - self.asr_weight)):
            out = self.model(input_values=input_values, attention_mask=attention_mask,
                             decoder_input_ids=decoder_input_ids[half],
                             decoder_attention_mask=decoder_attention_mask[half], labels=labels[half],
                             use_cache=False)
            backward(w * out.loss)
            total = total + w * out.loss.detach()
        return total
