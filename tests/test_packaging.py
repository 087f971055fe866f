"""Installs that work anywhere: the built wheel (not this checkout) runs the Space with only ``vecs[space]`` —
no argilla, psycopg, yt-dlp or google-genai — and ``vecs train`` renders its card from packaged templates; the
Space's YAML names every model it loads and a Python the project supports.

A fresh virtual environment gets the wheel, and the installed distributions of the extra's dependency closure
(read from their metadata) as links: only what the extra declares is importable, without downloading anything."""
from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from conftest import ROOT

FACTORY_ONLY = {"argilla", "psycopg", "yt-dlp", "google-genai", "sqlalchemy", "accelerate"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(extras: set[str]) -> set[str]:
    """Distribution names ``vecs[extras]`` needs, transitively, as this machine's markers evaluate them."""
    seen: set[str] = set()
    todo = [(Requirement(r), {"extra": e}) for r in metadata.requires("vecs") or [] for e in ("", *extras)]
    while todo:
        req, env = todo.pop()
        if req.marker and not req.marker.evaluate({**env}):
            continue
        name = _norm(req.name)
        if name == "vecs":  # vecs[all] names the other extras
            todo += [(Requirement(r), {"extra": e}) for r in metadata.requires("vecs") for e in req.extras]
            continue
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(name)  # PackageNotFoundError: the extra asks for what is not installed
        todo += [(Requirement(r), {"extra": e}) for r in dist.requires or [] for e in ("", *req.extras)]
    return seen


def _entry(dist, parts: tuple[str, ...]) -> tuple[str, ...]:
    """What to link for one installed file: its top-level entry, or one level deeper inside a namespace package
    that several distributions share (``google/``, ``nvidia/``): linking all of ``google/`` would also expose
    google-genai."""
    top = Path(dist.locate_file(parts[0]))
    if len(parts) > 2 and top.is_dir() and not (top / "__init__.py").exists() and not parts[0].endswith(".dist-info"):
        return parts[:2]
    return parts[:1]


def fresh_env(tmp: Path, wheel: Path, extras: set[str]) -> Path:
    """A venv that sees the wheel and the extra's closure, nothing else; returns its python."""
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True)
    deps = tmp / "deps"
    deps.mkdir()
    for name in closure(extras):
        dist = metadata.distribution(name)
        for parts in {_entry(dist, Path(str(f)).parts) for f in dist.files or []}:
            src, link = Path(dist.locate_file(Path(*parts))), deps.joinpath(*parts)
            if parts[0].endswith(".pth") or parts[0] == ".." or not src.exists() or link.exists():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(src)
    venv = tmp / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    (next((venv / "lib").glob("python3*")) / "site-packages" / "vecs-test.pth").write_text(f"{site}\n{deps}\n")
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True)
    (found,) = dist.glob("vecs-*.whl")
    return found


def test_the_wheel_carries_the_code_and_the_card_templates_not_the_tests(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("model_cards/whisper.md", "model_cards/e2e.md", "model_cards/mt.md",
                     "dataset_builder/cli/__init__.py", "modeling/registry.py", "annotation/server/query.py"):
        assert expected in names, expected
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "spaces/"))]


def test_the_space_runs_from_the_wheel_with_only_the_space_extra(wheel, tmp_path):
    from tiny_models import save_tiny_models

    needed = closure({"space"})
    assert "gradio" in needed and "transformers" in needed and "ctranslate2" in needed
    assert not needed & FACTORY_ONLY, needed & FACTORY_ONLY
    python = fresh_env(tmp_path, wheel, {"space"})
    space = tmp_path / "space"  # what a Space repository holds
    space.mkdir()
    shutil.copy(ROOT / "spaces" / "app.py", space / "app.py")
    shutil.copytree(ROOT / "spaces" / "vecs_space", space / "vecs_space")
    models = save_tiny_models(tmp_path / "models")
    script = (
        "import importlib.util, json, sys\n"
        "import app\n"
        "import dataset_builder, modeling\n"
        "from vecs_space.config import SpaceConfig\n"
        "cfg = SpaceConfig(whisper=sys.argv[1], baseline=sys.argv[1], e2e=sys.argv[2], mt=sys.argv[3],\n"
        "                  dataset=sys.argv[4], preload='all')\n"
        "models = app.Models(cfg)\n"
        "demo = app.build_demo(cfg, models)\n"
        "print(json.dumps({'problems': models.preload(), 'from': modeling.__file__,\n"
        "                  'absent': [m for m in ('argilla', 'psycopg', 'yt_dlp', 'google.genai', 'sqlalchemy',\n"
        "                             'accelerate') if importlib.util.find_spec(m) is None]}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    proc = subprocess.run([str(python), "-c", script, models["whisper"], models["e2e"], models["mt"],
                           str(tmp_path / "no-dataset")], cwd=space, capture_output=True, text=True, timeout=600,
                          env={**env, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["problems"] == [] and result["from"].startswith(str(tmp_path / "site"))
    assert sorted(result["absent"]) == sorted(["argilla", "psycopg", "yt_dlp", "google.genai", "sqlalchemy",
                                               "accelerate"])


def test_vecs_train_renders_its_card_from_the_installed_wheel(wheel, tmp_path, small_export):
    python = fresh_env(tmp_path, wheel, {"all"})
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    proc = subprocess.run(
        [str(python), "-m", "dataset_builder.cli", "train", "mt", "--output_dir", str(out), "--dataset",
         str(small_export), "--dataset_config", "prelabeled", "--model_name_or_path", "scratch", "--max_steps", "2",
         "--eval_steps", "2", "--save_steps", "2", "--max_eval_samples", "4", "--per_device_train_batch_size", "2",
         "--progress", "false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**env, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = (out / "best" / "README.md").read_text()
    assert "Text translation of **Vietnamese–English code-switched transcripts" in card
    assert "pipeline_tag: translation" in card


def test_the_space_yaml_names_every_model_it_loads_and_a_supported_python():
    sys.path.insert(0, str(ROOT / "spaces"))
    try:
        from vecs_space.config import SpaceConfig
    finally:
        sys.path.remove(str(ROOT / "spaces"))
    front = yaml.safe_load((ROOT / "spaces" / "README.md").read_text().split("---")[1])
    defaults = SpaceConfig()
    loaded = {defaults.whisper, defaults.baseline, defaults.e2e, defaults.mt}
    assert loaded <= set(front["preload_from_hub"]) and loaded <= set(front["models"])
    assert defaults.dataset in front["datasets"]
    requires = metadata.metadata("vecs")["Requires-Python"]
    assert tuple(int(x) for x in str(front["python_version"]).split(".")) >= tuple(
        int(x) for x in requires.lstrip(">=").split("."))
