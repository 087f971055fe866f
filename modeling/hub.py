"""The Hub as the unit of exchange for models: a trained model folder (weights, processor, card, figures, ct2/) and,
with ``--hub_strategy every_save``, the latest checkpoint (``last-checkpoint/``), from which a run on another
machine resumes (``--resume_from_hub``)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download

from dataset_builder.export.hub import push_folder

CHECKPOINT = "last-checkpoint"


def push_model(folder: Path, repo_id: str, *, private: bool = False) -> str:
    return push_folder(Path(folder), repo_id, private=private, repo_type="model",
                       allow_patterns=None, message="Upload VECS model")


def push_checkpoint(folder: Path, repo_id: str, *, private: bool = False) -> None:
    """``checkpoint-N/`` as the repo's ``last-checkpoint/``, replacing the previous one in the same commit."""
    api = HfApi(token=os.environ.get("HF_TOKEN"))
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", path_in_repo=CHECKPOINT,
                      delete_patterns=["*"], commit_message=f"Training checkpoint {Path(folder).name}")


def pull_checkpoint(repo_id: str, out: Path) -> Path | None:
    """The repo's ``last-checkpoint/`` as ``out/checkpoint-N/`` (N from its trainer state); None without one."""
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        try:
            local = Path(snapshot_download(repo_id, allow_patterns=[f"{CHECKPOINT}/*"], local_dir=tmp,
                                           token=os.environ.get("HF_TOKEN")))
        except Exception as exc:  # offline, no such repo: start from scratch, and say why
            print(f"no checkpoint pulled from {repo_id}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            return None
        state = local / CHECKPOINT / "trainer_state.json"
        if not state.exists():
            print(f"no checkpoint pulled from {repo_id}: it has no {CHECKPOINT}/")
            return None
        target = Path(out) / f"checkpoint-{json.loads(state.read_text())['step']}"
        shutil.move(str(local / CHECKPOINT), target)
        return target
