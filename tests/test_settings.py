"""Each method's settings come from its config dataclass: defaults, ranges, help, and the keys
an experiment file may give."""

from __future__ import annotations

import dataclasses

import pytest

from unlearn_cli.errors import UsageError
from unlearn_cli.methods import check_options, option_types
from unlearn_cli.methods.settings import METHODS, config_of, help_for


@pytest.mark.parametrize("method", list(METHODS))
def test_every_setting_has_help_and_its_default_validates(method):
    config = config_of(method)
    for f in dataclasses.fields(config):
        assert f.metadata["help"], f"{method}.{f.name} has no help"
        assert f"{method}" in help_for(f.name)
    config().validate()  # the defaults are in range


def test_help_groups_methods_that_say_the_same():
    text = help_for("epochs")
    assert text.startswith("redirect, surgery, ascent: passes over D_f \\[default: 1]")
    assert "retrain: passes over D_r \\[default: the checkpoint's]" in text


def test_experiment_keys_are_the_fields():
    fields = {f.name for m in METHODS.values() for f in dataclasses.fields(m.config)} - {"seed"}
    assert set(option_types()) == fields
    assert option_types()["match_steps"] is int and option_types()["lr"] is float


def test_options_are_checked_by_their_setting_name():
    check_options("surgery", {"lr": 1e-3, "projection": "conflict"})
    with pytest.raises(UsageError) as caught:
        check_options("ascent", {"projection": "always"})
    assert caught.value.setting == "projection" and "ascent" in str(caught.value)
    with pytest.raises(UsageError) as caught:
        check_options("redirect", {"retain_epochs": -1.0})
    assert caught.value.setting == "retain_epochs"


def test_the_forget_command_shows_the_dataclass_help(cli):
    result = cli("forget", "--help")
    flat = " ".join(result.stdout.replace("│", " ").split())
    assert "fu: prior batches to train on [default: 2000]" in flat


def test_redirect_keeps_only_settings_a_user_has_a_reason_to_change():
    """Its design's fixed values are constants; the variants that lost left the product."""
    names = [f.name for f in dataclasses.fields(config_of("redirect"))]
    assert len(names) <= 12
    gone = {"weighting", "targets", "covariance", "refit_twice", "refit", "npo_beta"}
    assert not gone & set(names)


def test_one_registry_names_each_method_with_its_class_and_settings(tiny_vae):
    from unlearn_cli.engine.checkpoint import load_checkpoint
    from unlearn_cli.methods import get_method

    ckpt = load_checkpoint(tiny_vae, "vae")
    for name, entry in METHODS.items():
        method = get_method(name)
        assert method.name == name and type(method).__name__ == entry.cls
        assert type(method.default_config(ckpt)) is entry.config
