"""Checkpoints: bit-exact round trips, repeatable training, and bad files refused clearly."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from unlearn_cli import __version__
from unlearn_cli.data.requests import Request, ids_sha256, training_set
from unlearn_cli.engine.checkpoint import (
    FORMAT,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from unlearn_cli.engine.train import TrainConfig, train_vae
from unlearn_cli.errors import CheckpointError
from unlearn_cli.models import VAE, JudgeConfig, VAEConfig, build_judge

CPU = torch.device("cpu")


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert torch.equal(sa[k], sb[k]), k


def one_line_error(path, kind: str | None = None) -> str:
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, kind=kind)
    message = str(e.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(scope="module")
def trained(tiny_spec, tiny_vae_config):
    """A VAE trained for one epoch, still in memory."""
    return train_vae(tiny_spec, tiny_vae_config, TrainConfig(epochs=1, batch_size=32, seed=0), CPU)


@pytest.fixture
def raw_parts(tiny_vae):
    """The tensors and the raw (string) metadata of the tiny VAE's file."""
    with safe_open(str(tiny_vae), framework="pt") as f:
        metadata = f.metadata()
    return load_file(str(tiny_vae)), metadata


def test_round_trip_is_bit_exact(trained, tiny_spec, tiny_vae_config, tmp_path):
    path = save_checkpoint(trained, tmp_path / "vae.safetensors")
    loaded = load_checkpoint(path, kind="vae")
    assert_same_weights(trained.model, loaded.model)
    assert loaded.kind == "vae"
    assert loaded.model_config == tiny_vae_config.to_dict()
    assert loaded.dataset == tiny_spec
    assert loaded.training == {
        "epochs": 1,
        "batch_size": 32,
        "lr": 1e-3,
        "seed": 0,
        "device": "cpu",
        "world_size": 1,  # one process, no torch.distributed backend
        "backend": None,
    }
    assert loaded.train_ids_sha256 == ids_sha256(training_set(tiny_spec).ids)
    assert loaded.num_samples == 300
    assert loaded.lineage == []
    assert loaded.metrics == trained.metrics
    assert loaded.tool_version == __version__
    assert loaded.path == path and len(loaded.sha256) == 64
    x = training_set(tiny_spec).images[:4].float() / 255
    torch.manual_seed(0)
    before = trained.model.negative_elbo(x)
    torch.manual_seed(0)
    assert torch.equal(before, loaded.model.negative_elbo(x))


@pytest.mark.parametrize("name", ["tiny_vae", "tiny_judge"])
def test_load_then_save_changes_nothing(name, request, tmp_path):
    """Weights (BatchNorm buffers included) and every metadata value survive load and save.

    The files' bytes may differ: safetensors writes metadata keys in no fixed order."""
    original = request.getfixturevalue(name)
    loaded = load_checkpoint(original)
    copy = save_checkpoint(loaded, tmp_path / "copy.safetensors")
    assert read_metadata(copy) == read_metadata(original)
    again = load_checkpoint(copy)
    assert_same_weights(loaded.model, again.model)
    original_tensors, copied_tensors = load_file(str(original)), load_file(str(copy))
    assert original_tensors.keys() == copied_tensors.keys()
    assert all(torch.equal(original_tensors[k], copied_tensors[k]) for k in original_tensors)


def test_metadata_is_json_values(tiny_vae, tiny_spec):
    meta = read_metadata(tiny_vae)
    assert meta["format"] == FORMAT and meta["kind"] == "vae"
    assert meta["dataset"] == tiny_spec.to_dict()
    assert meta["dataset"]["classes"] == [1, 3, 8] and meta["dataset"]["limit"] == 300
    assert meta["training"]["epochs"] == 3
    assert meta["train_seconds"] > 0 and meta["created"]


def test_lineage_survives_a_round_trip(tiny_vae, tmp_path):
    ckpt = load_checkpoint(tiny_vae)
    ckpt.lineage = [{"method": "x", "requests": [{"id": "r1", "class": [1]}]}]
    loaded = load_checkpoint(save_checkpoint(ckpt, tmp_path / "v.safetensors"))
    assert loaded.lineage == ckpt.lineage
    assert loaded.forgotten_requests() == [Request("r1", "class", (1,))]


def test_same_seed_same_weights(tiny_spec, tiny_vae_config, trained):
    again = train_vae(tiny_spec, tiny_vae_config, TrainConfig(epochs=1, batch_size=32, seed=0), CPU)
    assert_same_weights(trained.model, again.model)
    # what was learnt repeats; the process's memory peak need not (a later run reuses memory)
    memory = {"peak_rss_mb", "cuda_max_allocated_mb"}
    assert {k: v for k, v in again.metrics.items() if k not in memory} == {
        k: v for k, v in trained.metrics.items() if k not in memory
    }


def test_other_seed_other_weights(tiny_spec, tiny_vae_config, trained):
    other = train_vae(tiny_spec, tiny_vae_config, TrainConfig(epochs=1, batch_size=32, seed=1), CPU)
    a, b = trained.model.state_dict(), other.model.state_dict()
    assert all(not torch.equal(a[k], b[k]) for k in a)


def test_truncated_file(tiny_vae, tmp_path):
    data = tiny_vae.read_bytes()
    for size in (len(data) - 1, len(data) // 2, 100, 4, 0):
        path = tmp_path / f"cut{size}.safetensors"
        path.write_bytes(data[:size])
        assert "truncated" in one_line_error(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(
        torch.randint(
            0, 256, (4096,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
        )
        .numpy()
        .tobytes()
    )
    assert "not a readable safetensors checkpoint" in one_line_error(path)


class Touch:
    """Unpickling this creates a file: proof that a loader ran a pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    plain = tmp_path / "model.pkl"
    plain.write_bytes(pickle.dumps({"weight": Touch(marker)}))
    torch_file = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(3), "payload": Touch(marker)}, torch_file)
    for path in (plain, torch_file):
        assert "not a readable safetensors checkpoint" in one_line_error(path)
        with pytest.raises(CheckpointError):
            read_metadata(path)
    assert not marker.exists()
    pickle.loads(plain.read_bytes())  # the payload is live: unpickling does create the marker
    assert marker.exists()


def test_safetensors_without_our_metadata(tmp_path):
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2, 2)}, str(bare))
    assert "not an unlearn checkpoint" in one_line_error(bare)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "pt"})
    assert "not an unlearn checkpoint" in one_line_error(other)


def test_metadata_missing_keys(raw_parts, tmp_path):
    tensors, metadata = raw_parts
    for key in ("kind", "model_config", "dataset"):
        path = tmp_path / f"no-{key}.safetensors"
        save_file(tensors, str(path), metadata={k: v for k, v in metadata.items() if k != key})
        assert key in one_line_error(path)


def test_metadata_that_is_not_json(raw_parts, tmp_path):
    tensors, metadata = raw_parts
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata={**metadata, "training": "{epochs: 3"})
    assert "corrupt metadata" in one_line_error(path)


@pytest.mark.parametrize(
    "lineage, found",
    [
        ('[{"operation": "forget", "requests": [{"id": "r1"}]}]', "0 selectors"),
        ('[{"operation": "forget", "requests": [{"class": [1]}]}]', "not a request"),
        (
            '[{"operation": "forget", "requests": [{"id": "r1", "class": [1.5]}]}]',
            "1.5",
        ),  # a class is a digit or a name
        ('[{"operation": "forget"}]', "KeyError"),
        ('["forget"]', "not a list of entries"),
    ],
)
def test_a_corrupt_lineage_is_a_checkpoint_error(raw_parts, tmp_path, lineage, found):
    tensors, metadata = raw_parts
    path = tmp_path / "edited.safetensors"
    save_file(tensors, str(path), metadata={**metadata, "lineage": lineage})
    assert found in one_line_error(path)


def test_judge_where_a_vae_is_needed(tiny_judge, tiny_vae):
    assert "judge" in one_line_error(tiny_judge, kind="vae")
    assert "vae" in one_line_error(tiny_vae, kind="judge")
    assert load_checkpoint(tiny_judge, kind="judge").kind == "judge"


def test_weights_that_do_not_match_the_config(raw_parts, tmp_path):
    tensors, metadata = raw_parts
    first = next(iter(tensors))
    missing = tmp_path / "missing.safetensors"
    save_file({k: v for k, v in tensors.items() if k != first}, str(missing), metadata=metadata)
    assert f"missing {first}" in one_line_error(missing)
    extra = tmp_path / "extra.safetensors"
    save_file({**tensors, "stray.weight": torch.zeros(1)}, str(extra), metadata=metadata)
    assert "unexpected stray.weight" in one_line_error(extra)
    config = json.loads(metadata["model_config"])
    wider = tmp_path / "wider.safetensors"
    meta = {**metadata, "model_config": json.dumps({**config, "latent_dim": 5})}
    save_file(tensors, str(wider), metadata=meta)
    assert "wrong shape" in one_line_error(wider)
    unknown = tmp_path / "unknown.safetensors"
    meta = {**metadata, "model_config": json.dumps({**config, "depth": 3})}
    save_file(tensors, str(unknown), metadata=meta)
    assert "invalid model or dataset config" in one_line_error(unknown)
    conv3d = tmp_path / "conv3d.safetensors"
    meta = {**metadata, "model_config": json.dumps({**config, "arch": "conv3d"})}
    save_file(tensors, str(conv3d), metadata=meta)
    assert "conv3d" in one_line_error(conv3d)


def test_missing_file_and_directory(tmp_path):
    assert "no such file" in one_line_error(tmp_path / "absent.safetensors")
    assert "no such file" in one_line_error(tmp_path)


def test_unknown_kind(raw_parts, tmp_path):
    tensors, metadata = raw_parts
    path = tmp_path / "gan.safetensors"
    save_file(tensors, str(path), metadata={**metadata, "kind": json.dumps("gan")})
    assert "unknown checkpoint kind 'gan'" in one_line_error(path)


def test_save_leaves_no_temporary_file(trained, tmp_path):
    save_checkpoint(trained, tmp_path / "a.safetensors")
    save_checkpoint(trained, tmp_path / "a.safetensors")  # overwrites in place
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]


@pytest.mark.parametrize("preset", ["mnist", "celeba"])
def test_vae_presets_shapes(preset):
    cfg = VAEConfig.from_name(preset, latent_dim=8)
    vae = VAE.from_config(cfg)
    x = torch.rand(2, cfg.channels, cfg.image_size, cfg.image_size)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (2, 8)
    assert vae.negative_elbo(x).shape == (2,)
    samples = vae.decode(torch.randn(3, 8))  # (3, z) -> (3, C, H, W)
    assert samples.shape == (3, *x.shape[1:]) and samples.min() >= 0 and samples.max() <= 1
    assert VAEConfig(**cfg.to_dict()) == cfg


def test_allcnn_judge_shapes():
    cfg = JudgeConfig.from_name("mnist", num_classes=3, width=8)
    judge = build_judge(cfg).eval()
    x = torch.rand(2, cfg.channels, cfg.image_size, cfg.image_size)
    assert judge(x).shape == (2, 3)
    assert judge.features(x).shape == (2, judge.num_features)
    assert JudgeConfig(**cfg.to_dict()) == cfg
