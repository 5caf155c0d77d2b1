"""Every file in sample_configs/ (what a user copies) parses, and names the command that uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from unlearn_cli.cli.train_settings import TRAIN_KEYS
from unlearn_cli.config import check_fields, load_yaml
from unlearn_cli.data.requests import load_manifest
from unlearn_cli.workflows.experiment import load_experiment

CONFIGS = Path(__file__).parent.parent / "sample_configs"
EXPERIMENTS = sorted(  # every file that `unlearn compare` runs
    p.name for p in CONFIGS.glob("*.yaml") if p.read_text().startswith("# unlearn compare ")
)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_file_starts_with_the_command_that_uses_it(name):
    first = (CONFIGS / name).read_text().splitlines()[0]
    assert first.startswith("# unlearn "), first


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiments_load(name):
    exp = load_experiment(CONFIGS / name)
    assert exp.requests and exp.methods and exp.seeds
    assert f"unlearn compare sample_configs/{name}" in (CONFIGS / name).read_text()


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
