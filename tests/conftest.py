"""Shared fixtures: a private data cache, tiny data and tiny trained checkpoints (CPU only)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tiny models: thread overhead outweighs parallelism


class RecordingProgress:
    """A progress sink that records what a method announced and did: each stage's announced
    total and steps run (`stages`), every stage in order (`tasks`), statuses and logs."""

    def __init__(self):
        self.tasks: list[tuple[str, int]] = []
        self.stages: dict[str, list[int]] = {}  # description -> [total, steps run]
        self.statuses: list[str] = []
        self.steps = 0
        self.logs: list[str] = []

    def start(self, description, total):
        self.tasks.append((description, total))
        self.stages[description] = [total, 0]
        self.current = description

    def advance(self, n=1, status=""):
        self.steps += n
        self.stages[self.current][1] += n
        if status:
            self.statuses.append(status)

    def done(self, summary=""):
        pass

    def log(self, message):
        self.logs.append(message)


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory) -> Path:
    """Every test unpacks the embedded MNIST into one private cache, never the user's."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["UNLEARN_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_spec():
    from unlearn_cli.data.spec import DatasetSpec

    return DatasetSpec(name="mnist", classes=(1, 3, 8), limit=300)


@pytest.fixture(scope="session")
def tiny_vae_config():
    from unlearn_cli.models import VAEConfig

    return VAEConfig(arch="mlp", channels=1, image_size=28, hidden=(64, 32), latent_dim=4)


@pytest.fixture(scope="session")
def tiny_vae(tmp_path_factory, tiny_spec, tiny_vae_config) -> Path:
    """A VAE trained for 3 epochs on 300 MNIST138 images."""
    from unlearn_cli.engine.checkpoint import save_checkpoint
    from unlearn_cli.engine.train import TrainConfig, train_vae

    ckpt = train_vae(
        tiny_spec,
        tiny_vae_config,
        TrainConfig(epochs=3, batch_size=32, seed=0),
        torch.device("cpu"),
    )
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "vae.safetensors")


@pytest.fixture(scope="session")
def tiny_judge(tmp_path_factory, tiny_spec) -> Path:
    """An AllCNN judge (width 8) trained for 2 epochs on 300 MNIST138 images."""
    from unlearn_cli.engine.checkpoint import save_checkpoint
    from unlearn_cli.engine.train import TrainConfig, train_judge
    from unlearn_cli.models import JudgeConfig

    cfg = JudgeConfig(arch="allcnn", channels=1, image_size=28, num_classes=3, width=8)
    ckpt = train_judge(
        tiny_spec, cfg, TrainConfig(epochs=2, batch_size=32, seed=0), torch.device("cpu")
    )
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "judge.safetensors")


@pytest.fixture(scope="session")
def small_models():
    """A VAE (5 epochs) and a judge (1 epoch) on 2,000 MNIST138 images: good enough that the
    retrained model draws real-looking digits."""
    from unlearn_cli.data.spec import DatasetSpec
    from unlearn_cli.engine.train import TrainConfig, train_judge, train_vae
    from unlearn_cli.models import JudgeConfig, VAEConfig

    spec = DatasetSpec(name="mnist", classes=(1, 3, 8), limit=3000)
    vae_cfg = VAEConfig(arch="mlp", channels=1, image_size=28, hidden=(256, 128), latent_dim=8)
    cpu = torch.device("cpu")
    vae = train_vae(spec, vae_cfg, TrainConfig(epochs=8, batch_size=64, seed=0), cpu)
    judge_cfg = JudgeConfig(arch="allcnn", channels=1, image_size=28, num_classes=3, width=16)
    judge = train_judge(spec, judge_cfg, TrainConfig(epochs=2, batch_size=64, seed=0), cpu)
    return vae, judge


@pytest.fixture
def cli():
    """Run `unlearn ARGS...` in-process; returns the result (stdout and stderr kept apart)."""
    from typer.testing import CliRunner

    from unlearn_cli.cli import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return run


def ids_of_class(vae_path, label: int = 1, n: int = 5) -> str:
    """`--indices` for `n` training samples of class `label` of the checkpoint at `vae_path`."""
    from unlearn_cli.data.requests import training_set
    from unlearn_cli.engine.checkpoint import load_checkpoint

    data = training_set(load_checkpoint(vae_path, "vae").dataset)
    return ",".join(str(i) for i in data.ids[data.labels == label][:n].tolist())


def parse_json(result) -> dict:
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)
