"""Text a user controls (request ids, notes, file names, paths, YAML keys) is printed as text:
Rich markup in it is shown, not applied, and control characters reach the terminal as visible
escapes; --json output and the ledger keep the exact string."""

from __future__ import annotations

import dataclasses
import json
import shutil
import unicodedata

import pytest

from unlearn_cli.cli.output import shown, visible
from unlearn_cli.engine.checkpoint import load_checkpoint, save_checkpoint

HOSTILE = [
    "[/bold]x",  # a closing tag with no opening one: Rich raised MarkupError
    "[red]styled[/red]",
    "[link=https://example.com]click[/link]",
    "\x1b[2Jclear",  # clears the screen when printed raw
    "csi\x9b31m",  # the same through the one-byte C1 introducer
    "bell\x07del\x7f",
    "rtl\u202etxt.exe",  # a bidi override that shows the name reversed
    "two\nlines",
]


def untouched(text: str) -> None:
    """Nothing in `text` steers the terminal; every hostile string is there, in visible form."""
    steering = [c for c in text if c != "\n" and (unicodedata.category(c) == "Cc" or c == "\u202e")]
    assert steering == [], f"raw control characters reached the output: {steering!r}"
    for s in HOSTILE:
        assert visible(s) in text, f"{visible(s)!r} is not shown as text in:\n{text}"


def test_visible_renders_control_characters_as_escapes():
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("\x00\x9b\x7f") == "\\x00\\x9b\\x7f"
    assert visible("r\u202el\u2066") == "r\\u202el\\u2066"
    assert visible("tab\there\nnext") == "tab\\x09here\\x0anext"
    assert visible("ümlaut, 数字, emoji 👍, nbsp\u00a0") == "ümlaut, 数字, emoji 👍, nbsp\u00a0"
    assert visible(12) == "12"


def test_shown_is_printed_by_rich_exactly_as_visible():
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for s in HOSTILE:
        console.print(shown(s), end="|")
    assert console.export_text() == "".join(f"{visible(s)}|" for s in HOSTILE)


def manifest_of(path, model):
    """One request per hostile string (as its id and its note), each for one training sample."""
    from unlearn_cli.data.requests import training_set

    ids = training_set(load_checkpoint(model).dataset).ids.tolist()
    lines = ["requests:"]
    for rid, index in zip(HOSTILE, ids):  # JSON strings are YAML double-quoted scalars
        lines += [f"  - id: {json.dumps(rid)}", f"    indices: [{index}]"]
        lines += [f"    note: {json.dumps(rid)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_forget_dry_run_shows_every_id_as_text(cli, tiny_vae, tmp_path):
    manifest = manifest_of(tmp_path / "r.yaml", tiny_vae)
    result = cli("forget", tiny_vae, "--manifest", manifest, "--dry-run")
    assert result.exit_code == 0, result.stderr
    untouched(result.stdout)
    as_json = cli("forget", tiny_vae, "--manifest", manifest, "--dry-run", "--json")
    assert [r["id"] for r in json.loads(as_json.stdout)["requests"]] == HOSTILE


@pytest.fixture(scope="module")
def forgotten(tiny_vae, tmp_path_factory):
    """A child of the tiny VAE whose lineage holds the hostile ids, notes and receipt dates,
    in a file whose name is hostile too, and its ledger."""
    from typer.testing import CliRunner

    from unlearn_cli.cli import app

    folder = tmp_path_factory.mktemp("hostile")
    model = folder / "m.safetensors"
    shutil.copy(tiny_vae, model)
    manifest = manifest_of(folder / "r.yaml", model)
    child, ledger = folder / "child[red]\x1b[2J.safetensors", folder / "L\x1b.jsonl"
    args = ["forget", model, "--manifest", manifest, "--method", "ascent", "--out", child]
    result = CliRunner().invoke(app, [str(a) for a in [*args, "--ledger", ledger]])
    assert result.exit_code == 0, result.stderr
    return model, manifest, child, ledger


def test_skipped_requests_are_named_as_text(cli, forgotten, tmp_path):
    _, manifest, child, _ = forgotten
    result = cli("forget", child, "--manifest", manifest, "--out", tmp_path / "again.safetensors")
    assert result.exit_code == 0, result.stderr
    untouched(result.stderr)


def test_inspect_shows_lineage_and_file_name_as_text(cli, forgotten):
    _, _, child, _ = forgotten
    result = cli("inspect", child)
    assert result.exit_code == 0, result.stderr
    untouched(result.stdout)
    assert visible(child.name) in result.stdout.replace("\n", "")
    lineage = json.loads(cli("inspect", child, "--json").stdout)["lineage"]
    assert [r["note"] for r in lineage[0]["requests"]] == HOSTILE


def test_inspect_shows_hostile_metadata_as_text(cli, tiny_vae, tmp_path):
    ckpt = load_checkpoint(tiny_vae)
    forged = dataclasses.replace(ckpt, metrics={s: s for s in HOSTILE}, training={"x": HOSTILE})
    path = save_checkpoint(forged, tmp_path / "forged.safetensors")
    result = cli("inspect", path)
    assert result.exit_code == 0, result.stderr
    untouched(result.stdout)


def test_audit_shows_ids_and_paths_as_text(cli, forgotten):
    _, _, child, ledger = forgotten
    ok = cli("audit", ledger)
    assert ok.exit_code == 0, ok.stderr
    assert visible(ledger) in ok.stdout.replace("\n", "")
    receipts = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [r["request_id"] for r in receipts] == HOSTILE  # the ledger keeps the exact string
    moved = ledger.with_name("moved.jsonl")
    moved.write_text(ledger.read_text().replace(json.dumps(str(child))[1:-1], "gone[/bold]\\u001b"))
    result = cli("audit", moved)
    assert result.exit_code == 4, result.stderr
    untouched(result.stdout)
    assert "gone[/bold]\\x1b" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("inspect", "no[/bold]such\x1b[2J\u202e.safetensors"),
        ("audit", "no[/bold]such\x1b[2J\u202e.jsonl"),
        ("forget", "no[/bold]such\x1b[2J\u202e.safetensors", "--class", "1"),
    ],
)
def test_error_lines_show_paths_as_text(cli, args):
    result = cli(*args)
    assert result.exit_code == 2
    assert "no[/bold]such\\x1b[2J\\u202e" in result.stderr
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr


def test_error_lines_show_yaml_keys_and_ids_as_text(cli, tiny_vae, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text('requests:\n  - id: "[/bold]\\e[2J"\n    class: 1\n    "\\e]8;;x\\a": 2\n')
    result = cli("forget", tiny_vae, "--manifest", bad, "--dry-run")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "[/bold]" in result.stderr
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
