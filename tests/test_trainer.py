"""The training loop's options a single process can show: streaming a dataset (a local export read as a stream,
the code path of a Hub repo too large for the disk), TensorBoard logs, checkpoints pushed during the run and a
run resumed from them on another machine, FSDP wrap classes checked against the model, and one line for every
impossible request. The Hub upload is the one call replaced here (a recording stand-in for ``HfApi``)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modeling.data import DataError
from modeling.mt.train import MTTask, MTTrainingArguments
from modeling.trainer import run_training

TINY = dict(model_name_or_path="scratch", scratch_vocab_size=300, scratch_d_model=32, dataset_config="prelabeled",
            per_device_train_batch_size=2, learning_rate=1e-3, warmup_steps=1, logging_steps=1, max_eval_samples=4,
            progress=False, seed=1)


def args(tmp_path: Path, dataset: Path, **over) -> MTTrainingArguments:
    return MTTrainingArguments(output_dir=str(tmp_path / "run"), dataset=str(dataset), **{**TINY, **over})


def test_a_streamed_dataset_trains_and_needs_a_step_count(small_export, tmp_path):
    summary = run_training(MTTask(args(tmp_path, small_export, streaming=True, max_steps=3, eval_steps=3,
                                       save_steps=3, report_to="tensorboard")))
    assert summary["steps"] == 3 and summary["train_samples"] is None  # a stream has no length
    from modeling.trainer import Trainer

    trainer = Trainer(MTTask(args(tmp_path / "held", small_export, streaming=True, max_steps=3, report_to="none")))
    trainer.prepare()  # the sample of texts the model is built from holds no audio (it is kept for the whole run)
    assert trainer.train_data.samples and all(s.audio is None for s in trainer.train_data.samples)
    events = list((tmp_path / "run").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0  # TensorBoard, offline, by default
    with pytest.raises(DataError, match="a streamed dataset has no length here; give --max_steps"):
        run_training(MTTask(args(tmp_path / "again", small_export, streaming=True, max_steps=0)))


class FakeHub:
    """Stands in for the Hub: uploads are copied into a folder per repo, downloads read from it."""

    def __init__(self, root: Path) -> None:
        self.root, self.commits = root, []

    def api(self, token=None):
        hub = self

        class Api:
            def create_repo(self, repo_id, **kw):
                (hub.root / repo_id).mkdir(parents=True, exist_ok=True)
                return f"https://huggingface.co/{repo_id}"

            def upload_folder(self, *, folder_path, repo_id, path_in_repo=".", delete_patterns=None, **kw):
                target = hub.root / repo_id / path_in_repo
                if delete_patterns == ["*"]:
                    shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(folder_path, target, dirs_exist_ok=True)
                hub.commits.append((repo_id, path_in_repo, sorted(p.name for p in Path(folder_path).iterdir())))
        return Api()

    def snapshot_download(self, repo_id, allow_patterns=None, local_dir=None, **kw):
        src = hub_dir = self.root / repo_id
        if not hub_dir.exists():
            raise FileNotFoundError(f"{repo_id}: no such repo")
        shutil.copytree(src, local_dir, dirs_exist_ok=True)
        return local_dir


def test_checkpoints_pushed_during_the_run_resume_it_elsewhere(small_export, tmp_path, monkeypatch):
    import modeling.hub as hub_module

    hub = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(hub_module, "HfApi", hub.api)
    monkeypatch.setattr(hub_module, "snapshot_download", hub.snapshot_download)
    monkeypatch.setattr("dataset_builder.export.hub.HfApi", hub.api)
    first = args(tmp_path / "machine-a", small_export, max_steps=4, eval_steps=2, save_steps=2, report_to="none",
                 push_to_hub=True, hub_model_id="me/vecs-mt", hub_strategy="every_save", dataset_hub_id="me/vecs")
    summary = run_training(MTTask(first))
    pushed = [path for _, path, _ in hub.commits]
    assert pushed.count("last-checkpoint") == 2 and summary["hub_url"].endswith("me/vecs-mt")
    state = json.loads((tmp_path / "hub" / "me/vecs-mt" / "last-checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 4
    card = (tmp_path / "hub" / "me/vecs-mt" / "README.md").read_text()
    assert "- name: me/vecs-mt" in card and "# me/vecs-mt" in card  # the card names the repo it was pushed to
    assert "type: me/vecs" in card  # the dataset's Hub id, though it trained on a local copy
    # another machine, nothing local: it starts from the pushed checkpoint and trains on to step 6
    second = args(tmp_path / "machine-b", small_export, max_steps=6, eval_steps=2, save_steps=2, report_to="none",
                  hub_model_id="me/vecs-mt", resume_from_hub=True)
    summary = run_training(MTTask(second))
    history = json.loads((tmp_path / "machine-b" / "run" / "train_results.json").read_text())["history"]
    assert summary["steps"] == 6 and min(h["step"] for h in history if "loss" in h) == 1  # the history came along
    assert {h["step"] for h in history if "loss" in h} == set(range(1, 7))


def test_fsdp_wrap_classes_come_from_the_model_and_a_wrong_config_is_one_line():
    from modeling.mt.model import build_offline
    from modeling.trainer import fsdp_wrap_classes

    model, _ = build_offline(["mình có một meeting"] * 4, vocab_size=60, d_model=16, layers=1)
    assert {"MBartDecoderLayer", "MBartEncoderLayer"} <= set(fsdp_wrap_classes(model, None))  # its _no_split_modules
    assert fsdp_wrap_classes(model, ["MBartEncoderLayer"]) == ["MBartEncoderLayer"]
    with pytest.raises(DataError, match=r"wraps WhisperEncoderLayer, which this model does not have \(its layers: "
                                        r"MBartDecoderLayer, MBartEncoderLayer\)"):
        fsdp_wrap_classes(model, ["WhisperEncoderLayer"])


def test_a_time_budget_sizes_the_schedule_instead_of_the_epoch_count(small_export, tmp_path):
    """A budget without --max_steps is the schedule: the run goes past the default 3 epochs and its learning rate
    decays towards 0 as the budget ends, instead of stopping early with the budget unused."""
    from modeling.data import epoch_batches, load_split

    epochs3 = 3 * len(epoch_batches(load_split(str(small_export), "prelabeled", "train").durations, 2, 1, seed=1))
    summary = run_training(MTTask(args(tmp_path, small_export, max_train_minutes=0.25, eval_steps=10**6,
                                       save_steps=10**6, lr_scheduler_type="cosine", report_to="none")))
    history = json.loads((tmp_path / "run" / "train_results.json").read_text())["history"]
    lrs = [h["lr"] for h in history if "lr" in h]
    assert summary["steps"] > epochs3, (summary["steps"], epochs3)
    assert max(lrs) == pytest.approx(1e-3, rel=0.05) and lrs[-1] < 0.25 * 1e-3, lrs[-5:]
    assert summary["train_seconds_this_run"] < 0.25 * 60 + 20  # and it ends near the budget's end
    with pytest.raises(DataError, match="--lr_scheduler_type 'step': expected one of linear, cosine"):
        run_training(MTTask(args(tmp_path / "bad", small_export, max_steps=1, lr_scheduler_type="step")))


def test_prediction_under_fsdp2_gathers_the_root_and_buffers_are_refused_in_one_line():
    """Seen on a GPU under scripts/accelerate/fsdp.yaml: evaluation called the encoder's convolution directly and met
    FSDP2's sharded parameters ("got mixed torch.Tensor and DTensor"); the MT model's buffer stopped accelerate's
    RAM-efficient loading. FSDP2 runs on a CPU gloo group here, as accelerate does on GPUs."""
    import socket

    import numpy as np
    import torch
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard

    from modeling.mt.model import build_offline as build_mt
    from modeling.trainer import check_fsdp_loading, gathered
    from modeling.whisper.decode import WhisperTranscriber
    from modeling.whisper.model import WhisperWithCTC, build_offline

    torch.manual_seed(0)
    model, processor = build_offline(["mình có một meeting rất quan trọng với team"] * 30, input_seconds=4,
                                     vocab_size=300, d_model=64, encoder_layers=1, decoder_layers=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        net = WhisperWithCTC(model, 0.0)
        for layer in [*net.whisper.model.encoder.layers, *net.whisper.model.decoder.layers]:
            fully_shard(layer)
        fully_shard(net)
        batch = dict(input_features=torch.randn(2, 80, 400), decoder_input_ids=torch.tensor([[1, 2, 3]] * 2),
                     labels=torch.tensor([[2, 3, 4]] * 2))
        net(**batch)[0].backward()
        audio = [np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1]
        with pytest.raises(RuntimeError, match="DTensor"):
            WhisperTranscriber(net.whisper, processor).transcribe(audio)
        with gathered(net) as whole:
            assert isinstance(WhisperTranscriber(whole.whisper, processor).transcribe(audio)[0].text, str)
        assert torch.isfinite(net(**batch)[0])  # and training goes on, resharded
    finally:
        dist.destroy_process_group()
    mt = build_mt(["xin chào team"] * 30, vocab_size=300, d_model=32)[0]
    with pytest.raises(DataError, match="final_logits_bias.*set it to false"):
        check_fsdp_loading(mt, True)
    check_fsdp_loading(mt, False)
    check_fsdp_loading(model, True)  # Whisper has no persistent buffer
