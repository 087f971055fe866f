"""Publishing the export folder as a Hub dataset repo with huggingface_hub (token: HF_TOKEN or a login)."""
from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import HfApi

from .plan import Plan
from .report import FIGURES, REPORT
from .splits import SPLITS

UPLOAD_PATTERNS = ["README.md", "export_report.json", "data/**", "images/**"]


def planned_files(plan: Plan, configs: tuple[str, ...]) -> list[str]:
    """What an export of ``plan`` writes (and a push uploads)."""
    files = ["README.md", REPORT, *FIGURES.values()]
    for config in configs:
        files += [f"data/{config}/{split}-*.parquet" for split in SPLITS if plan.examples[config][split]]
    return files


def push_folder(out_dir: Path, repo_id: str, *, private: bool = False, token: str | None = None,
                repo_type: str = "dataset", allow_patterns: list[str] | None = UPLOAD_PATTERNS,
                message: str = "Update VECS export") -> str:
    """Create the repo if needed and upload the folder in one commit; returns the repo URL.

    Datasets from ``vecs export`` and models from the trainers go through here (token: HF_TOKEN or a login).
    """
    api = HfApi(token=token or os.environ.get("HF_TOKEN"))
    url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(out_dir), repo_id=repo_id, repo_type=repo_type,
                      allow_patterns=allow_patterns, commit_message=message)
    return str(url)
