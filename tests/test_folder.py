"""The folder dataset's reader: layout, labels, identities, the held-out share, model choice and
every bad input it refuses (one line each)."""

from __future__ import annotations

import shutil

import pytest
from folder_fixture import CLASSES, make_folder, striped_files

from unlearn_cli.data.folder import ATTR_FILE, changes, file_id, held_out, load_folder
from unlearn_cli.data.spec import DatasetSpec, folder_spec, load_split
from unlearn_cli.engine.train import judge_config, vae_config
from unlearn_cli.errors import DataError


@pytest.fixture(scope="module")
def grey(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("grey"), per_class=6, test_per_class=2, size=16)


@pytest.fixture
def copy(grey, tmp_path):
    return shutil.copytree(grey, tmp_path / "data")


def spec_of(root, **kw) -> DatasetSpec:
    return folder_spec(DatasetSpec(name="folder", root=str(root), **kw))


def test_layout_labels_and_identities(grey):
    spec = spec_of(grey)
    assert spec.classes == CLASSES and spec.channels == 1 and spec.image_size == 16
    assert spec.holdout is None  # test/ is the held-out split
    data = load_split(spec)
    assert len(data) == 18 and data.images.shape == (18, 1, 16, 16)
    assert data.files[0] == "train/cat/000.png" and data.files[1] == "train/cat/001.jpg"
    assert data.ids.tolist() == [file_id(f) for f in data.files]
    dog = data.class_index("dog")
    assert [f for f, row in zip(data.files, data.labels) if row[dog]] == [
        f"train/dog/{i:03d}.{'png' if i % 2 == 0 else 'jpg'}" for i in range(6)
    ]
    striped = data.labels[:, data.attribute_index("Striped")].bool()
    assert [f for f, s in zip(data.files, striped) if s] == striped_files(grey)
    assert data.ids_of_files(["train/owl/003.jpg"]).tolist() == [file_id("train/owl/003.jpg")]
    assert len(load_split(spec, "test")) == 6


def test_colour_images_get_the_conv_vae_and_resnet(tmp_path):
    root = make_folder(tmp_path / "c", per_class=4, test_per_class=0, size=40, colour=True)
    spec = spec_of(root)
    assert spec.channels == 3 and spec.image_size == 32  # 40, down to a multiple of 16
    assert spec.holdout == 0.1  # no test/: a share of train/ held out, recorded
    assert vae_config(spec).arch == "conv" and judge_config(spec).arch == "resnet18"
    assert load_split(spec).images.shape[1:] == (3, 32, 32)
    small = spec_of(make_folder(tmp_path / "g", per_class=2, test_per_class=0, size=20))
    assert (small.image_size, vae_config(small).arch, judge_config(small).arch) == (
        20,
        "mlp",
        "allcnn",
    )
    assert vae_config(small, latent_dim=4).latent_dim == 4


def test_the_held_out_share_is_stable_when_files_are_added(tmp_path):
    root = make_folder(tmp_path / "d", per_class=12, test_per_class=0)
    spec = spec_of(root)
    before = set(load_split(spec, "test").files)
    assert before and all(held_out(f, 0.1) for f in before)
    shutil.copy(root / "train/cat/000.png", root / "train/cat/900.png")
    with (root / ATTR_FILE).open("a") as f:
        f.write("train/cat/900.png,0,1\n")
    after = set(load_split(spec, "test").files)
    assert after - {"train/cat/900.png"} == before
    assert not set(load_split(spec).files) & after


def test_changes_tell_edits_from_additions(copy):
    recorded = load_folder(copy, "train", 16, 1).fingerprint
    assert changes(recorded, recorded, copy) is None
    (copy / "train/dog/000.png").write_bytes((copy / "train/cat/000.png").read_bytes())
    assert "edited" in changes(recorded, load_folder(copy, "train", 16, 1).fingerprint, copy)
    (copy / "train/dog/000.png").unlink()
    with (copy / ATTR_FILE).open() as f:
        kept = [line for line in f if not line.startswith("train/dog/000.png")]
    (copy / ATTR_FILE).write_text("".join(kept))
    said = changes(recorded, load_folder(copy, "train", 16, 1).fingerprint, copy)
    assert "17 training images now, 18 when" in said


def test_a_relabelled_attribute_is_a_change(copy):
    """The same images, one of them relabelled in attributes.csv: an attribute request now
    selects other samples, so the folder no longer matches the model."""
    recorded = load_folder(copy, "train", 16, 1).fingerprint
    lines = (copy / ATTR_FILE).read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("train/cat/000.png,"))
    name, striped, feline = lines[row].split(",")
    lines[row] = f"{name},{1 - int(striped)},{feline}"
    (copy / ATTR_FILE).write_text("\n".join(lines) + "\n")
    said = changes(recorded, load_folder(copy, "train", 16, 1).fingerprint, copy)
    assert said == (
        f"{copy}: {ATTR_FILE} labels the training images differently from when the model was "
        "trained"
    )
    legacy = {k: v for k, v in recorded.items() if k != "labels_sha256"}  # an older checkpoint
    assert changes(legacy, load_folder(copy, "train", 16, 1).fingerprint, copy) is None


def test_minus_one_one_values_are_read_like_celeba(copy):
    text = (copy / ATTR_FILE).read_text().replace(",0,", ",-1,").replace(",0\n", ",-1\n")
    (copy / ATTR_FILE).write_text(text)
    data = load_folder(copy, "train", 16, 1)
    striped = data.labels[:, data.attribute_index("Striped")].bool()
    assert [f for f, s in zip(data.files, striped) if s] == striped_files(copy)


def test_a_flat_folder_with_attributes(tmp_path):
    """No class folders: images lie in train/ and attributes.csv labels them."""
    root = make_folder(tmp_path / "flat", per_class=4, test_per_class=0, attributes=False)
    lines = ["file,Striped,Feline"]
    for p in sorted((root / "train").rglob("*.*")):
        name = f"{p.parent.name}-{p.name}"  # e.g. cat-001.jpg
        p.rename(root / "train" / name)
        lines.append(f"train/{name},{int(p.stem) % 2},{int(name.startswith('cat'))}")
    for name in CLASSES:
        (root / "train" / name).rmdir()
    (root / ATTR_FILE).write_text("\n".join(lines) + "\n")
    spec = spec_of(root)
    assert spec.classes is None and spec.holdout == 0.1
    data = load_split(spec)
    assert data.labels.shape[1] == 2 and data.attribute_index("Feline") == 1
    feline = data.labels[:, 1].bool()
    assert [f for f, c in zip(data.files, feline) if c] == [
        f for f in data.files if f.startswith("train/cat-")
    ]
    with pytest.raises(DataError, match="no class folders"):
        data.class_index("cat")
    (root / ATTR_FILE).unlink()
    with pytest.raises(DataError, match="no class folders"):
        spec_of(root)


def one_line(match: str):
    """pytest.raises for a DataError whose message is one line and matches `match`."""

    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(DataError, match=match)
            self.info = self.ctx.__enter__()

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            assert "\n" not in str(self.info.value)
            return handled

    return Check()


def test_bad_inputs_are_one_line_errors(copy):
    (copy / "train/cat/002.png").write_bytes(b"not a png at all")
    with one_line(r"train/cat/002.png: not a readable image"):
        load_folder(copy, "train", 16, 1)
    (copy / "train/cat/002.png").write_bytes((copy / "train/cat/000.png").read_bytes())
    csv = (copy / ATTR_FILE).read_text().splitlines()
    bad = [*csv[:3], csv[3].rsplit(",", 1)[0] + ",2", *csv[4:]]  # line 4: a value of 2
    (copy / ATTR_FILE).write_text("\n".join(bad))
    with one_line(rf"{ATTR_FILE}:4: expected a file and 2 values of 0/1 or -1/1"):
        load_folder(copy, "train", 16, 1)
    (copy / ATTR_FILE).write_text("\n".join([*csv, "train/cat/gone.png,0,1"]))  # removed since
    assert len(load_folder(copy, "train", 16, 1)) == 18
    (copy / ATTR_FILE).write_text("\n".join([csv[0], *csv[2:]]))
    with one_line(r"no row for train/cat/000.png"):
        load_folder(copy, "train", 16, 1)
    (copy / ATTR_FILE).write_text("\n".join(csv))
    (copy / "train/bat").mkdir()
    with one_line(r"class 'bat' .* has no images"):
        load_folder(copy, "train", 16, 1)
    shutil.copy(copy / "train/cat/000.png", copy / "train/bat/000.png")
    with one_line(r"class 'bat' .* has only one image"):
        spec_of(copy)


def test_a_class_the_held_out_share_empties_is_refused(tmp_path):
    """Without test/, a class of two images can lose both to the held-out share."""
    root = make_folder(tmp_path / "d", per_class=4, test_per_class=0)
    names = [f"train/bat/{i:03d}.png" for i in range(10_000)]
    both = [n for n in names if held_out(n, 0.1)][:2]
    (root / "train/bat").mkdir()
    for name in both:
        shutil.copy(root / "train/cat/000.png", root / name)
    with (root / ATTR_FILE).open("a") as f:
        f.writelines(f"{name},0,0\n" for name in both)
    with one_line(r"class 'bat' has no training images once 10% of .* is held out"):
        load_split(spec_of(root))


def test_the_conv_vae_refuses_a_side_it_cannot_halve(grey):
    from unlearn_cli.errors import UsageError

    with pytest.raises(UsageError, match="multiple of 16"):
        vae_config(spec_of(grey, image_size=20), arch="conv")


def test_class_folders_named_by_numbers_are_named_as_typed(tmp_path):
    """`--class 12` and `--class 07` name the folders 12 and 07 (no digit range, no lost zero);
    a class the folder lacks is refused with its classes."""
    from unlearn_cli.cli.selectors import flag_requests
    from unlearn_cli.data.requests import resolve_all
    from unlearn_cli.workflows.targets import parse_target

    root = make_folder(tmp_path / "n", per_class=3, test_per_class=0, classes=("07", "12", "cat"))
    spec = spec_of(root)
    data = load_split(spec)
    requests = flag_requests(["12", "07"], [], None, None)
    found = resolve_all(requests, data, spec)
    for request, name in zip(requests, ("12", "07")):
        members = data.labels[:, data.class_index(name)].bool()
        assert found[request.id].tolist() == sorted(data.ids[members].tolist())
    assert parse_target("class:07,12").values == ("07", 12)
    with pytest.raises(DataError, match="unknown class '7'.*the classes: 07, 12, cat"):
        resolve_all(flag_requests(["7"], [], None, None), data, spec)
