"""Property-based: arbitrary YAML documents given as manifests, and arbitrary metadata strings in
a safetensors file, never raise anything but the tool's own errors."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unlearn_cli.data.requests import Request, parse_requests
from unlearn_cli.engine.checkpoint import FORMAT, read_metadata
from unlearn_cli.errors import UnlearnError
from unlearn_cli.workflows.inspect import describe_checkpoint

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
keys = st.sampled_from(["requests", "id", "class", "indices", "files", "attribute", "note"])
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys | st.text(max_size=4), inner),
    max_leaves=20,
)
requests_docs = st.fixed_dictionaries(
    {"requests": st.lists(st.dictionaries(keys, documents, max_size=4), max_size=4)}
)
# derandomize: every run (CI included) explores the same examples
FAST = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(documents | requests_docs)
def test_parse_requests_raises_only_its_own_errors(data):
    try:
        requests = parse_requests(data, "m.yaml")
    except UnlearnError:
        return
    for r in requests:  # what it accepts round-trips through the lineage's form
        assert Request.from_dict(json.loads(json.dumps(r.to_dict()))) == r


@FAST
@given(st.text(max_size=200))
def test_any_yaml_text_is_loaded_or_refused(tmp_path_factory, text):
    from unlearn_cli.data.requests import load_manifest

    path = tmp_path_factory.mktemp("yaml") / "m.yaml"
    path.write_text(text)
    with contextlib.suppress(UnlearnError):
        load_manifest(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
metadata_keys = st.sampled_from(
    ["kind", "model_config", "dataset", "lineage", "metrics", "training", "created", "x"]
)
metadata_values = json_values.map(json.dumps) | st.text(max_size=20)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("meta")


@FAST
@given(st.dictionaries(metadata_keys, metadata_values, max_size=6), st.booleans())
def test_arbitrary_metadata_is_read_or_refused(folder, metadata, with_format):
    from safetensors.torch import save_file

    path = folder / "c.safetensors"
    if with_format:
        metadata = {**metadata, "format": json.dumps(FORMAT)}
    save_file({"w": torch.zeros(2)}, str(path), metadata=metadata)
    from typer.testing import CliRunner

    from unlearn_cli.cli import app

    shown = CliRunner().invoke(app, ["inspect", str(path)])
    assert shown.exit_code in (0, 2), shown.stderr  # never an unexpected error (1)
    try:
        meta = read_metadata(path)
        info = describe_checkpoint(path)
    except UnlearnError:
        return
    assert isinstance(meta, dict) and info["problems"] == []
    json.dumps(info, allow_nan=False)
