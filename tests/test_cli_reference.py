"""docs/cli.md is the commands' own reference, and the help reads in panels."""

from __future__ import annotations

from pathlib import Path

from unlearn_cli.cli.reference import reference

PAGE = Path(__file__).parents[1] / "docs" / "cli.md"


def test_the_reference_page_is_current():
    """Regenerate with `python -m unlearn_cli.cli.reference > docs/cli.md`."""
    assert PAGE.read_text() == reference()


def test_every_method_setting_is_a_flag_in_the_reference():
    from unlearn_cli.methods.settings import all_settings

    text = reference()
    for name in all_settings():
        assert f"`--{name.replace('_', '-')} " in text, name


def test_forget_help_groups_its_options_in_panels(cli):
    result = cli("forget", "-h")
    assert result.exit_code == 0
    for panel in ("What to forget", "Method", "Output", "Data and device", "Examples"):
        assert panel in result.stdout, panel
    method = result.stdout.index("Method")
    assert result.stdout.index("--npo-weight") > method  # the settings sit in the method panel
    assert "<bool>" not in result.stdout.split("--help")[0] + result.stdout.split("-h")[-1][:0]


def test_every_command_answers_dash_h_with_examples(cli):
    for command in ("train", "forget", "evaluate", "compare", "inspect", "audit"):
        result = cli(command, "-h")
        assert result.exit_code == 0, command
        assert f"unlearn {command} " in result.stdout.split("Examples:")[1], command
