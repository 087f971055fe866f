"""Publishing the export folder as a Hub dataset repo with huggingface_hub (token: HF_TOKEN or a login)."""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

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


def _managed(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or (p.endswith("/**") and path.startswith(p[:-2])) for p in patterns)


def push_export(out_dir: Path, repo_id: str, *, private: bool = False, token: str | None = None,
                patterns: list[str] = UPLOAD_PATTERNS, message: str = "Update VECS export") -> tuple[str, dict]:
    """Make the dataset repo hold exactly this export, in one commit: every file of the folder that the
    export writes is added, and every file of the repo under those paths that the export no longer has
    (shards of an earlier export, named for another shard count, or of a config dropped since) is deleted in
    the same commit — so the card's globs never load two exports at once, and removed rows do not stay public.
    The commit names the revision it was computed against: if the repo moved meanwhile, the Hub refuses it.
    Returns the repo URL and what was added and deleted."""
    out_dir = Path(out_dir)
    api = HfApi(token=token or os.environ.get("HF_TOKEN"))
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    local = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*")
                   if p.is_file() and _managed(p.relative_to(out_dir).as_posix(), patterns))
    head = api.repo_info(repo_id, repo_type="dataset").sha
    remote = api.list_repo_files(repo_id, repo_type="dataset", revision=head)
    stale = sorted(f for f in remote if _managed(f, patterns) and f not in set(local))
    operations = [CommitOperationDelete(path_in_repo=f) for f in stale]
    operations += [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(out_dir / f)) for f in local]
    api.create_commit(repo_id, operations, commit_message=message, repo_type="dataset", parent_commit=head)
    return str(url), {"added": len(local), "deleted": len(stale)}


def push_folder(out_dir: Path, repo_id: str, *, private: bool = False, token: str | None = None,
                repo_type: str = "dataset", allow_patterns: list[str] | None = UPLOAD_PATTERNS,
                message: str = "Update VECS export") -> str:
    """Create the repo if needed and upload the folder in one commit; returns the repo URL.

    Models from the trainers go through here (token: HF_TOKEN or a login); a dataset export goes through
    :func:`push_export`, which also deletes what the new export no longer has.
    """
    api = HfApi(token=token or os.environ.get("HF_TOKEN"))
    url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(out_dir), repo_id=repo_id, repo_type=repo_type,
                      allow_patterns=allow_patterns, commit_message=message)
    return str(url)
