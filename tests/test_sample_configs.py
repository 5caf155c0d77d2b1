"""Every file in sample_configs/ parses, and names what its header comment says."""

from __future__ import annotations

from pathlib import Path

import pytest

from unlearn_cli.cli.train import TRAIN_KEYS
from unlearn_cli.config import check_fields, load_yaml
from unlearn_cli.data.requests import load_manifest
from unlearn_cli.engine.compare import load_experiment

CONFIGS = Path(__file__).parent.parent / "sample_configs"
EXPERIMENTS = ["quick.yaml", "mnist138.yaml", "mnist138-lr.yaml", "celeba-male.yaml"]


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_file_starts_with_the_command_that_uses_it(name):
    first = (CONFIGS / name).read_text().splitlines()[0]
    assert first.startswith("# unlearn "), first


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiments_load(name):
    exp = load_experiment(CONFIGS / name)
    assert exp.requests and exp.methods and exp.seeds
    assert f"unlearn compare sample_configs/{name}" in (CONFIGS / name).read_text()


def test_the_paper_experiment_is_mnist138_forgetting_one_over_three_seeds():
    exp = load_experiment(CONFIGS / "mnist138.yaml")
    assert exp.dataset.classes == (1, 3, 8) and exp.seeds == [0, 1, 2]
    assert [(r.selector, r.values) for r in exp.requests] == [("class", (1,))]
    assert {m.method for m in exp.methods} == {"ascent", "fu", "surgery", "redirect"}
    assert exp.evaluate["samples"] == 10000


def test_manifest_and_train_configs_parse():
    assert load_manifest(CONFIGS / "requests.yaml")
    for name in ("train-mnist138.yaml", "train-judge-mnist138.yaml"):
        problems: list[str] = []
        check_fields(load_yaml(CONFIGS / name), TRAIN_KEYS, name, problems)
        assert problems == []
