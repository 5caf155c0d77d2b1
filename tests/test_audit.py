"""The audit trail: several manifests as one operation, `inspect`, `audit`, and checkpoints whose
bytes an auditor can reproduce."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import parse_json

from unlearn_cli.data.requests import training_set
from unlearn_cli.engine.checkpoint import load_checkpoint, read_metadata


@pytest.fixture
def model(tiny_vae, tmp_path):
    path = tmp_path / "m0.safetensors"
    shutil.copy(tiny_vae, path)
    return path


@pytest.fixture
def ids(tiny_vae) -> dict[int, list[int]]:
    """Training identities of the tiny model, by digit."""
    data = training_set(load_checkpoint(tiny_vae).dataset)
    return {d: data.ids[data.labels == d].tolist() for d in (1, 3, 8)}


def manifest(path, *requests: tuple[str, str, object]):
    lines = ["requests:"]
    for rid, selector, value in requests:
        lines += [f"  - id: {rid}", f"    {selector}: {json.dumps(value)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def chain(cli, model, ids, tmp_path):
    """m0 -> m1 (one manifest) -> m2 (two manifests in one invocation), receipts in L.jsonl."""
    a = manifest(tmp_path / "a.yaml", ("a1", "indices", ids[3][:2]))
    b = manifest(tmp_path / "b.yaml", ("b1", "indices", ids[3][1:3]), ("b2", "class", 8))
    c = manifest(tmp_path / "c.yaml", ("c1", "indices", ids[1][:1]))
    ledger = tmp_path / "L.jsonl"
    m1, m2 = tmp_path / "m1.safetensors", tmp_path / "m2.safetensors"
    parse_json(cli("forget", model, "--manifest", a, "--out", m1, "--ledger", ledger, "--json"))
    summary = parse_json(
        cli(
            "forget",
            m1,
            "--manifest",
            b,
            "--manifest",
            c,
            "--out",
            m2,
            "--ledger",
            ledger,
            "--json",
        )
    )
    return {"m0": model, "m1": m1, "m2": m2, "ledger": ledger, "summary": summary}


def test_several_manifests_are_one_operation_and_overlaps_are_forgotten_once(chain, ids):
    (first, second) = read_metadata(chain["m2"])["lineage"]
    assert [r["id"] for r in second["requests"]] == ["b1", "b2", "c1"]
    eights = len(ids[8])
    assert second["forgotten_count"] == 1 + eights + 1  # b1's first sample went in operation 1
    receipts = [json.loads(line) for line in chain["ledger"].read_text().splitlines()]
    assert [r["request_id"] for r in receipts] == ["a1", "b1", "b2", "c1"]
    b1 = receipts[1]
    assert b1["selected"] == 2 and b1["already_forgotten"] == 1
    assert b1["operation_forgotten"] == second["forgotten_count"]
    assert "forgotten_total" not in b1
    status = {r["id"]: r["status"] for r in chain["summary"]["requests"]}
    assert status["b1"] == "forgotten (1 forgotten before)"


def test_a_request_id_in_two_manifests_is_refused(cli, model, tmp_path):
    a = manifest(tmp_path / "a.yaml", ("same", "class", 1))
    b = manifest(tmp_path / "b.yaml", ("same", "class", 3))
    result = cli("forget", model, "--manifest", a, "--manifest", b, "--dry-run")
    assert result.exit_code == 2
    assert f"request 'same' is also in {a}" in result.stderr


def test_a_new_request_selecting_only_forgotten_samples_writes_nothing(cli, chain, ids, tmp_path):
    again = manifest(tmp_path / "d.yaml", ("d1", "indices", ids[3][:3]))
    out = tmp_path / "m3.safetensors"
    summary = parse_json(cli("forget", chain["m2"], "--manifest", again, "--out", out, "--json"))
    assert summary["out"] is None and not out.exists()
    assert summary["requests"][0]["status"] == "nothing new: forgotten before"


def test_inspect_json_holds_the_whole_lineage(cli, chain):
    info = parse_json(cli("inspect", chain["m2"], "--json"))
    m0, m1 = load_checkpoint(chain["m0"]), load_checkpoint(chain["m1"])
    assert info["sha256"] == load_checkpoint(chain["m2"]).sha256 and info["kind"] == "vae"
    assert info["num_samples"] == 300 and "mnist digits 1,3,8" in info["dataset"]
    assert [op["number"] for op in info["lineage"]] == [1, 2]
    assert [op["parent_sha256"] for op in info["lineage"]] == [m0.sha256, m1.sha256]
    assert info["original_sha256"] == m0.sha256
    assert [r["id"] for r in info["lineage"][1]["requests"]] == ["b1", "b2", "c1"]
    assert info["lineage"][1]["requests"][1]["selector"] == "class 8"
    assert info["lineage"][0]["method"] == "redirect" and info["lineage"][0]["forgotten_count"] == 2


def test_inspect_table_names_requests_and_parents(cli, chain):
    result = cli("inspect", chain["m2"])
    assert result.exit_code == 0, result.stderr
    for text in ("lineage", "b2", "class 8", load_checkpoint(chain["m1"]).sha256):
        assert text in result.stdout
    bad = cli("inspect", chain["ledger"])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_audit_passes_on_an_honest_ledger(cli, chain):
    report = parse_json(cli("audit", chain["ledger"], "--json"))
    assert report["ok"] and report["receipts"] == 4 and report["mismatches"] == []
    given = parse_json(cli("audit", chain["ledger"], chain["m2"], chain["m0"], "--json"))
    assert given["ok"] and given["receipts"] == 3  # b1, b2 and c1 name m2


def mismatches(result) -> list[tuple]:
    assert result.exit_code == 4, result.stdout + result.stderr
    report = json.loads(result.stdout)
    return [(m["request_id"], m["check"]) for m in report["mismatches"]]


def test_audit_finds_a_changed_file(cli, chain):
    data = bytearray(chain["m1"].read_bytes())
    data[-1] ^= 1
    chain["m1"].write_bytes(bytes(data))
    assert mismatches(cli("audit", chain["ledger"], "--json")) == [("a1", "sha256")]
    table = cli("audit", chain["ledger"])
    assert table.exit_code == 4 and "changed" in table.stdout and "a1" in table.stdout


def test_audit_finds_a_missing_file_and_a_receipt_the_lineage_lacks(cli, chain):
    chain["m1"].unlink()
    lines = chain["ledger"].read_text().splitlines()
    forged = json.loads(lines[-1]) | {"request_id": "never-forgotten"}
    chain["ledger"].write_text("\n".join([*lines, json.dumps(forged)]) + "\n")
    found = mismatches(cli("audit", chain["ledger"], "--json"))
    assert found == [("a1", "sha256"), ("never-forgotten", "request")]


def test_audit_finds_a_broken_chain(cli, chain, tmp_path):
    """Without m1's receipt, nothing vouches that m2 was made from a file that forgot a1."""
    lines = chain["ledger"].read_text().splitlines()
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(lines[1:]) + "\n")
    found = mismatches(cli("audit", partial, "--json"))
    assert found == [("b1", "chain"), ("b2", "chain"), ("c1", "chain")]
    # given, the intermediate checkpoint vouches for the link, but it has no receipt here
    found = mismatches(cli("audit", partial, chain["m2"], chain["m1"], "--json"))
    assert found == [("-", "receipt")]


def test_audit_finds_a_chain_that_starts_at_another_original(cli, chain, tiny_judge):
    found = mismatches(cli("audit", chain["ledger"], chain["m2"], tiny_judge, "--json"))
    assert found == [("b1", "chain"), ("b2", "chain"), ("c1", "chain")]
    assert parse_json(cli("audit", chain["ledger"], chain["m2"], chain["m0"], "--json"))["ok"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "holds no receipts"),
        ('{"request_id": "x"}\n', "receipt without parent_sha256"),
        ("not json\n", ":1: not a JSON receipt"),
    ],
)
def test_a_bad_ledger_is_exit_2_with_one_line(cli, tmp_path, content, message):
    ledger = tmp_path / "L.jsonl"
    ledger.write_text(content)
    result = cli("audit", ledger)
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    missing = cli("audit", tmp_path / "nope.jsonl")
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_the_same_command_writes_the_same_bytes(cli, model, ids, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    request = manifest(tmp_path / "r.yaml", ("r1", "indices", ids[8][:5]))
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for out in (a, b):
        parse_json(cli("forget", model, "--manifest", request, "--out", out, "--json"))
    assert a.read_bytes() == b.read_bytes()
    (entry,) = read_metadata(a)["lineage"]
    assert entry["created"] == "2026-01-01T00:00:00+00:00" and entry["wall_seconds"] == 0.0
    common = ["--classes", "1,3", "--limit", "64", "--epochs", "1", "--json", "--out"]
    parse_json(cli("train", *common, a))
    parse_json(cli("train", *common, b))
    assert a.read_bytes() == b.read_bytes()
    assert read_metadata(a)["created"] == "2026-01-01T00:00:00+00:00"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    result = cli("train", *common, a)
    assert result.exit_code == 2 and "SOURCE_DATE_EPOCH" in result.stderr
