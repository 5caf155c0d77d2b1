"""The README's CI example, sample_configs/ci-forget.sh, run with bash on a tiny model so that it
cannot rot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "sample_configs" / "ci-forget.sh"


def test_ci_script_gates_records_and_audits(tiny_vae, cache_dir, tmp_path):
    models, manifests = tmp_path / "models", tmp_path / "manifests"
    models.mkdir()
    manifests.mkdir()
    shutil.copy(tiny_vae, models / "vae-0000.safetensors")
    from unlearn_cli.data.requests import training_set
    from unlearn_cli.engine.checkpoint import load_checkpoint, read_metadata

    ids = training_set(load_checkpoint(tiny_vae).dataset).ids[:3].tolist()
    (manifests / "batch-0001.yaml").write_text(f"requests:\n  - id: r1\n    indices: {ids}\n")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "UNLEARN_CACHE_DIR": str(cache_dir),
        "UNLEARN_SAMPLES": "64",
        "UNLEARN_METHOD": "surgery",
        "OMP_NUM_THREADS": "1",
    }

    def run(gates: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(SCRIPT), "models", "manifests", "ledger.jsonl"],
            cwd=tmp_path, env={**env, "UNLEARN_GATES": gates}, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip

    failed = run("--max-mia-auc 0.0")  # no model reaches an AUC of 0: the gate fails
    assert failed.returncode == 3, failed.stderr
    assert "nothing recorded" in failed.stderr
    assert sorted(p.name for p in models.iterdir()) == ["vae-0000.safetensors"]
    assert not (tmp_path / "ledger.jsonl").exists()

    passed = run("--max-mia-auc 1.0")
    assert passed.returncode == 0, passed.stderr
    assert "every sha256, request and chain matches" in passed.stdout
    child = models / "batch-0001.safetensors"
    (receipt,) = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert receipt["request_id"] == "r1" and receipt["checkpoint"] == str(child)
    assert receipt["child_sha256"] == load_checkpoint(child).sha256
    assert read_metadata(child)["lineage"][0]["requests"] == [{"id": "r1", "indices": ids}]

    again = run("--max-mia-auc 1.0")  # the newest manifest is already applied
    assert again.returncode == 0 and "nothing to do" in again.stderr
