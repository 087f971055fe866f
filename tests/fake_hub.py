"""A recording stand-in for the one Hub call of the factory: ``huggingface_hub.HfApi`` on an in-memory repo.

Everything up to the upload is real (the export folder, the commit operations huggingface_hub builds); only the
network is replaced. It keeps each repo's files and every commit (its operations), and implements the subset of
``HfApi`` the export uses, with the Hub's semantics: ``create_commit`` applies additions and deletions atomically
(and refuses a stale ``parent_commit``), ``upload_folder`` adds the folder's files matching ``allow_patterns``
and deletes only what ``delete_patterns`` names, in one commit.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Commit:
    message: str
    added: list[str]
    deleted: list[str]


@dataclass
class Repo:
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    private: bool = False

    @property
    def sha(self) -> str:
        return f"{len(self.commits):040x}"


class RepoInfo:
    def __init__(self, sha: str) -> None:
        self.sha = sha


def _match(path: str, patterns) -> bool:
    if patterns is None:
        return True
    patterns = [patterns] if isinstance(patterns, str) else patterns
    return any(fnmatch.fnmatch(path, p) or (p.endswith("/**") and path.startswith(p[:-2])) for p in patterns)


class FakeHfApi:
    """Use as ``monkeypatch.setattr(module, "HfApi", FakeHfApi)``; ``FakeHfApi.repos`` holds the state."""

    repos: dict[str, Repo] = {}
    tokens: list = []

    def __init__(self, token=None, **_kw) -> None:
        FakeHfApi.tokens.append(token)

    @classmethod
    def reset(cls) -> None:
        cls.repos = {}
        cls.tokens = []

    def create_repo(self, repo_id: str, *, repo_type: str | None = None, private: bool = False, exist_ok: bool = False,
                    **_kw) -> str:
        if repo_id in self.repos and not exist_ok:
            raise FileExistsError(repo_id)
        self.repos.setdefault(repo_id, Repo(private=private))
        return f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"

    def repo_info(self, repo_id: str, **_kw) -> RepoInfo:
        return RepoInfo(self.repos[repo_id].sha)

    def list_repo_files(self, repo_id: str, **_kw) -> list[str]:
        return sorted(self.repos[repo_id].files)

    def create_commit(self, repo_id: str, operations, *, commit_message: str, parent_commit: str | None = None,
                      **_kw):
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        repo = self.repos[repo_id]
        if parent_commit is not None and parent_commit != repo.sha:
            raise RuntimeError("412 Precondition Failed: the branch moved since parent_commit")
        files = dict(repo.files)
        added, deleted = [], []
        for op in operations:
            if isinstance(op, CommitOperationDelete):
                if op.is_folder:
                    gone = [f for f in files if f.startswith(op.path_in_repo.rstrip("/") + "/")]
                else:
                    gone = [op.path_in_repo] if op.path_in_repo in files else []
                if not gone:
                    raise FileNotFoundError(op.path_in_repo)
                for f in gone:
                    del files[f]
                deleted += gone
            elif isinstance(op, CommitOperationAdd):
                src = op.path_or_fileobj
                files[op.path_in_repo] = Path(src).read_bytes() if isinstance(src, (str, Path)) else bytes(src)
                added.append(op.path_in_repo)
            else:
                raise TypeError(type(op))
        repo.files = files
        repo.commits.append(Commit(commit_message, added, deleted))
        return RepoInfo(repo.sha)

    def upload_folder(self, *, folder_path, repo_id: str, allow_patterns=None, delete_patterns=None,
                      commit_message: str | None = None, path_in_repo: str | None = None, **kw):
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        root = Path(folder_path)
        local = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                       and ".git" not in p.relative_to(root).parts)
        adds = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(root / rel))
                for rel in local if _match(rel, allow_patterns)]
        added = {op.path_in_repo for op in adds}
        deletes = [CommitOperationDelete(path_in_repo=f) for f in self.list_repo_files(repo_id)
                   if delete_patterns and _match(f, delete_patterns) and f not in added]
        return self.create_commit(repo_id, deletes + adds, commit_message=commit_message or "Upload folder")
