"""Every YAML file in sample_configs/ (what a user copies) and benchmarks/ (the evidence) parses,
and names the command that uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from unlearn_cli.cli.train_settings import TRAIN_KEYS
from unlearn_cli.config import check_fields, load_yaml
from unlearn_cli.data.requests import load_manifest
from unlearn_cli.workflows.experiment import load_experiment

REPO = Path(__file__).parent.parent
CONFIGS = REPO / "sample_configs"
YAML = sorted(
    f"{folder}/{p.name}"
    for folder in ("sample_configs", "benchmarks")
    for p in (REPO / folder).glob("*.yaml")
)
EXPERIMENTS = [  # every file that `unlearn compare` runs
    name for name in YAML if (REPO / name).read_text().startswith("# unlearn compare ")
]


@pytest.mark.parametrize("name", YAML)
def test_every_file_starts_with_the_command_that_uses_it(name):
    first = (REPO / name).read_text().splitlines()[0]
    assert first.startswith("# unlearn "), first


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiments_load(name):
    exp = load_experiment(REPO / name)
    assert exp.requests and exp.methods and exp.seeds
    assert f"unlearn compare {name}" in (REPO / name).read_text()


def test_manifest_and_train_configs_parse():
    assert load_manifest(CONFIGS / "requests.yaml")
    assert load_manifest(CONFIGS / "mnist138-samples.yaml")
    for name in ("train-mnist138.yaml", "train-judge-mnist138.yaml"):
        problems: list[str] = []
        check_fields(load_yaml(CONFIGS / name), TRAIN_KEYS, name, problems)
        assert problems == []


def test_sample_configs_hold_no_laboratory():
    """Scripts and ablations live in benchmarks/; a user copies only configs and the CI script."""
    assert sorted(p.suffix for p in CONFIGS.iterdir() if p.suffix not in (".yaml",)) == [".sh"]
