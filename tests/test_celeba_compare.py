"""Forgetting a CelebA attribute end to end, on a generated fixture: compare drives train,
forget and evaluate through the convolutional VAE and the ResNet18 judge."""

from __future__ import annotations

from celeba_fixture import make_celeba
from conftest import parse_json

EXPERIMENT = """\
# unlearn compare celeba.yaml
name: celeba-fixture
dataset: {{name: celeba, data_dir: {root}}}
model: {{latent_dim: 4, hidden: [8, 8, 16, 16]}}
train: {{epochs: 1, batch_size: 8}}
judge: {{attribute: Male, epochs: 1, batch_size: 8}}
forget:
  requests:
    - {{id: forget-male, attribute: Male}}
methods: [surgery]
seeds: [0]
evaluate: {{samples: 20, batch_size: 10}}
out_dir: {out}
"""


def test_forgetting_an_attribute(cli, tmp_path):
    root = make_celeba(tmp_path / "celeba", n=40)
    path = tmp_path / "celeba.yaml"
    path.write_text(EXPERIMENT.format(root=root, out=tmp_path / "runs"))
    report = parse_json(cli("compare", path, "--json"))
    assert report["target"] == "attribute:Male"
    assert [r["title"] for r in report["rows"]] == [
        "BEFORE",
        "SURGERY (paper, decoder)",
        "RETRAIN",
    ]
    for row in report["rows"]:
        assert 0.0 <= row["cells"]["privacy.fratio"]["mean"] <= 1.0
        assert row["cells"]["utility.fid"] is not None
    surgery = report["rows"][1]["models"][0]
    from unlearn_cli.engine.checkpoint import read_metadata

    (entry,) = read_metadata(surgery)["lineage"]
    assert entry["requests"] == [{"id": "forget-male", "attribute": ["Male"]}]
    assert entry["forgotten_count"] == 15  # every other of the 30 training images is Male
    assert entry["hyperparameters"]["lr"] == 1e-5  # the paper's CelebA step size
