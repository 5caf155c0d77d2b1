"""Each method's settings come from its config dataclass: defaults, ranges, help, and the keys
an experiment file may give."""

from __future__ import annotations

import dataclasses

import pytest

from unlearn_cli.errors import UsageError
from unlearn_cli.methods import check_options, option_types
from unlearn_cli.methods.settings import CONFIGS, help_for


@pytest.mark.parametrize("method", list(CONFIGS))
def test_every_setting_has_help_and_its_default_validates(method):
    config = CONFIGS[method]
    for f in dataclasses.fields(config):
        assert f.metadata["help"], f"{method}.{f.name} has no help"
        assert f"{method}" in help_for(f.name)
    config().validate()  # the defaults are in range


def test_help_groups_methods_that_say_the_same():
    text = help_for("epochs")
    assert text.startswith("redirect, surgery, ascent: passes over D_f \\[default: 1]")
    assert "retrain: passes over D_r \\[default: the checkpoint's]" in text


def test_experiment_keys_are_the_fields():
    fields = {f.name for c in CONFIGS.values() for f in dataclasses.fields(c)} - {"seed"}
    assert set(option_types()) == fields
    assert option_types()["refit"] is bool and option_types()["lr"] is float


def test_options_are_checked_by_their_setting_name():
    check_options("surgery", {"lr": 1e-3, "projection": "conflict"})
    with pytest.raises(UsageError) as caught:
        check_options("ascent", {"projection": "always"})
    assert caught.value.setting == "projection" and "ascent" in str(caught.value)
    with pytest.raises(UsageError) as caught:
        check_options("redirect", {"bank_size": 5, "interior_k": 10})
    assert str(caught.value) == "bank_size must exceed interior_k (10), got 5"


def test_the_forget_command_shows_the_dataclass_help(cli):
    result = cli("forget", "--help")
    flat = " ".join(result.stdout.replace("│", " ").split())
    assert "fu: prior batches to train on [default: 2000]" in flat
