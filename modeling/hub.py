"""Pushing a trained model folder (weights, processor, card, figures) to the Hub."""
from __future__ import annotations

from pathlib import Path

from dataset_builder.export.hub import push_folder


def push_model(folder: Path, repo_id: str, *, private: bool = False) -> str:
    return push_folder(Path(folder), repo_id, private=private, repo_type="model",
                       allow_patterns=None, message="Upload VECS model")
