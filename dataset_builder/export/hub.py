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


def push_folder(out_dir: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Create the dataset repo if needed and upload the folder in one commit; returns the repo URL."""
    api = HfApi(token=token or os.environ.get("HF_TOKEN"))
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(out_dir), repo_id=repo_id, repo_type="dataset",
                      allow_patterns=UPLOAD_PATTERNS, commit_message="Update VECS export")
    return str(url)
