"""Whisper as this project trains it: a checkpoint by name (or a small one built from a config for offline
runs), an encoder that can take shorter inputs, and an optional CTC head on the encoder.

The CTC head gives the encoder an alignment signal plain cross-entropy lacks; the decoder then cannot ignore
the audio as easily, which is where hallucination loops come from. It is used in training only: saved
checkpoints are plain ``WhisperForConditionalGeneration`` and load anywhere.
"""
from __future__ import annotations

from torch import nn
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
)
from transformers.models.whisper.tokenization_whisper import LANGUAGES

from ..ctc import CTCHead
from ..loading import ModelError, load_or_fail
from .tokenizer import train_whisper_tokenizer

HOP_SECONDS = 0.01  # one log-mel frame per 10 ms; the encoder halves the frames into positions


def tiny_config(vocab_size: int, *, d_model: int = 256, encoder_layers: int = 4, decoder_layers: int = 2,
                heads: int = 4, input_seconds: float = 30.0, num_mel_bins: int = 80, **kw) -> WhisperConfig:
    return WhisperConfig(
        vocab_size=vocab_size, num_mel_bins=num_mel_bins, d_model=d_model, encoder_layers=encoder_layers,
        decoder_layers=decoder_layers, encoder_attention_heads=heads, decoder_attention_heads=heads,
        encoder_ffn_dim=4 * d_model, decoder_ffn_dim=4 * d_model,
        max_source_positions=int(round(input_seconds / HOP_SECONDS / 2)), max_target_positions=448, **kw)


def generation_config_for(tokenizer, config: WhisperConfig) -> GenerationConfig:
    """The generation settings Whisper's ``generate`` reads, derived from the tokenizer's ids."""
    ids = tokenizer.convert_tokens_to_ids
    return GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"), eos_token_id=ids("<|endoftext|>"),
        pad_token_id=ids("<|endoftext|>"), bos_token_id=ids("<|endoftext|>"),
        lang_to_id={f"<|{c}|>": ids(f"<|{c}|>") for c in LANGUAGES},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        is_multilingual=True, no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"), max_initial_timestamp_index=50,
        begin_suppress_tokens=[ids(" ") if ids(" ") != tokenizer.unk_token_id else ids("<|endoftext|>"),
                               ids("<|endoftext|>")],
        suppress_tokens=[], max_length=config.max_target_positions,
    )


def build_offline(texts, *, input_seconds: float = 30.0, vocab_size: int = 1200, unit: str = "bpe", **arch) -> tuple:
    """A small Whisper and its processor from the corpus text alone (no download)."""
    tokenizer = train_whisper_tokenizer(texts, vocab_size=vocab_size, unit=unit)
    fe = WhisperFeatureExtractor(feature_size=arch.get("num_mel_bins", 80), chunk_length=int(round(input_seconds)))
    config = tiny_config(len(tokenizer), input_seconds=input_seconds, pad_token_id=tokenizer.pad_token_id,
                         decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id, **arch)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = generation_config_for(tokenizer, config)
    return model, WhisperProcessor(feature_extractor=fe, tokenizer=tokenizer)


def load(name_or_path: str, *, input_seconds: float | None = None) -> tuple:
    """``(model, processor)`` from the Hub or a folder; a clear error if it cannot be loaded."""
    model, processor = load_or_fail(name_or_path, lambda n: (WhisperForConditionalGeneration.from_pretrained(n),
                                                             WhisperProcessor.from_pretrained(n)))
    if input_seconds is not None:
        set_input_seconds(model, processor, input_seconds)
    return model, processor


def input_seconds(model) -> float:
    return model.config.max_source_positions * 2 * HOP_SECONDS


def set_input_seconds(model, processor, seconds: float) -> None:
    """Fewer encoder positions for corpora of short segments: the encoder's cost falls with its input
    (30 s → 8 s is ~4x less encoder compute). Pretrained position embeddings are truncated, not relearned."""
    positions = int(round(seconds / HOP_SECONDS / 2))
    current = model.config.max_source_positions
    if positions > current:
        raise ModelError(f"input of {seconds} s exceeds the model's {input_seconds(model):.0f} s")
    if positions == current:
        return
    enc = model.model.encoder
    weight = enc.embed_positions.weight.data[:positions].clone()
    enc.embed_positions = nn.Embedding(positions, weight.shape[1])
    enc.embed_positions.weight.data.copy_(weight)
    enc.embed_positions.requires_grad_(False)
    model.config.max_source_positions = enc.config.max_source_positions = positions
    enc.max_source_positions = positions
    fe = processor.feature_extractor
    fe.chunk_length = int(round(seconds))
    fe.n_samples = fe.chunk_length * fe.sampling_rate
    fe.nb_max_frames = fe.n_samples // fe.hop_length


class WhisperWithCTC(nn.Module):
    """Whisper's seq2seq loss plus ``ctc_weight`` · CTC on the encoder (hybrid CTC/attention)."""

    def __init__(self, whisper: WhisperForConditionalGeneration, ctc_weight: float = 0.0) -> None:
        super().__init__()
        self.whisper = whisper
        self.ctc_weight = ctc_weight
        self.ctc = CTCHead(whisper.config.d_model, whisper.config.vocab_size) if ctc_weight > 0 else None

    def forward(self, input_features, decoder_input_ids, labels, frame_lengths=None, ctc_targets=None):
        out = self.whisper(input_features=input_features, decoder_input_ids=decoder_input_ids, labels=labels)
        ce = out.loss
        if self.ctc is None or ctc_targets is None:
            return ce, {"ce": ce.detach()}
        ctc = self.ctc.loss(out.encoder_last_hidden_state, (frame_lengths + 1) // 2, ctc_targets)  # conv stride 2
        return (1 - self.ctc_weight) * ce + self.ctc_weight * ctc, {"ce": ce.detach(), "ctc": ctc.detach()}
