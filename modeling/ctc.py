"""An auxiliary CTC head for speech encoders trained from scratch (Whisper's and the E2E model's).

Cross-entropy alone lets a small decoder fit the transcripts from its own history and ignore the audio; CTC on
the encoder must explain every target token from the frames, which gives the encoder an alignment signal and
the decoder states worth attending to. The head is training-only: checkpoints are saved without it.
"""
from __future__ import annotations

import torch
from torch import nn


class CTCHead(nn.Module):
    """Encoder states → token logits plus a blank (the last class)."""

    def __init__(self, d_model: int, vocab_size: int) -> None:
        super().__init__()
        self.blank = vocab_size
        self.proj = nn.Linear(d_model, vocab_size + 1)

    def loss(self, encoder_states: torch.Tensor, positions: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
        """Mean CTC loss; ``positions`` are the valid encoder frames of each row."""
        log_probs = self.proj(encoder_states).float().log_softmax(-1).transpose(0, 1)  # (T, B, V+1)
        positions = torch.clamp(positions, max=encoder_states.shape[1]).to(log_probs.device)
        target_lengths = torch.tensor([len(t) for t in targets], device=log_probs.device)
        flat = torch.tensor([i for t in targets for i in t], dtype=torch.long, device=log_probs.device)
        return nn.functional.ctc_loss(log_probs, flat, positions, target_lengths, blank=self.blank,
                                      reduction="mean", zero_infinity=True)
