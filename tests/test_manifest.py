"""Forget-set manifests: valid batches parse; every malformed one is rejected with its location."""

from __future__ import annotations

import datetime as dt

import pytest

from unlearn_cli.data.requests import Request, load_manifest, parse_requests, read_indices_file
from unlearn_cli.errors import ConfigError, DataError


def write(tmp_path, text: str):
    path = tmp_path / "requests.yaml"
    path.write_text(text)
    return path


def test_valid_manifest_parses_every_selector(tmp_path):
    path = write(
        tmp_path,
        """
requests:
  - id: gdpr-1
    class: 1
    received: 2026-11-02
    note: all ones
  - id: gdpr-2
    indices: [12, 40, 77]
  - id: 3
    files: 000123.jpg
  - id: gdpr-4
    attribute: [Male, Eyeglasses]
""",
    )
    reqs = load_manifest(path)
    assert reqs == [
        Request("gdpr-1", "class", (1,), "2026-11-02", "all ones"),
        Request("gdpr-2", "indices", (12, 40, 77)),
        Request("3", "files", ("000123.jpg",)),
        Request("gdpr-4", "attribute", ("Male", "Eyeglasses")),
    ]
    assert Request.from_dict(reqs[0].to_dict()) == reqs[0]


@pytest.mark.parametrize(
    "body, expected",
    [
        ("requests:\n  - id: a\n    klass: 1\n", ["request 'a': unknown key 'klass'"]),
        ("requests:\n  - id: a\n    indices: [1, -4]\n", ["request 'a'.indices: -4"]),
        ("requests:\n  - id: a\n    indices: [1, 2.5]\n", ["request 'a'.indices: 2.5"]),
        ("requests:\n  - id: a\n    indices: ['7']\n", ["request 'a'.indices: '7'"]),
        ("requests:\n  - id: a\n    class: true\n", ["request 'a'.class: True"]),
        ("requests:\n  - class: 1\n", ["request 1: needs an `id`"]),
        ("requests:\n  - id: a\n    class: 1\n    indices: [2]\n", ["exactly one of"]),
        ("requests:\n  - id: a\n    class: 1\n  - id: a\n    class: 3\n", ["duplicate id"]),
        ("requests:\n  - id: a\n    attribute: 3\n", ["request 'a'.attribute: expected names"]),
        ("requests:\n  - id: a\n    indices: []\n", ["request 'a'.indices: empty"]),
        ("requests: []\n", ["non-empty list"]),
        ("- id: a\n  class: 1\n", ["expected a mapping with one key"]),
        ("requests:\n  - id: a\n    class: 1\nextra: 1\n", ["unknown keys: extra"]),
        ("requests:\n  - id: a\n    class: 1\n    note: [x]\n", ["note: expected a string"]),
    ],
)
def test_invalid_manifests_name_the_request_and_field(tmp_path, body, expected):
    with pytest.raises(ConfigError) as info:
        load_manifest(write(tmp_path, body))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "requests.yaml"))
    for part in expected:
        assert part in message
    assert "\n" not in message


def test_all_problems_of_a_file_are_reported_together(tmp_path):
    body = "requests:\n  - id: a\n    klass: 1\n  - id: b\n    indices: [-1]\n"
    with pytest.raises(ConfigError) as info:
        load_manifest(write(tmp_path, body))
    assert len(info.value.problems) >= 2


def test_python_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "marker"
    body = f"requests: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(ConfigError, match="not plain YAML data"):
        load_manifest(write(tmp_path, body))
    assert not marker.exists()


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_manifest(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"line \d+: not plain YAML"):
        load_manifest(write(tmp_path, "requests:\n  - id: [unclosed\n"))


def test_received_dates_become_iso_text():
    reqs = parse_requests(
        {"requests": [{"id": "a", "class": 1, "received": dt.date(2026, 1, 2)}]}, "x"
    )
    assert reqs[0].received == "2026-01-02"


def test_indices_file(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# deletion batch\n12, 40\n77  000123.jpg\n")
    assert read_indices_file(path) == [12, 40, 77, "000123.jpg"]
    path.write_text("12\n-3\n")
    with pytest.raises(DataError, match="ids.txt:2: -3 is negative"):
        read_indices_file(path)
    path.write_text("12\nabc\n")
    with pytest.raises(DataError, match="'abc' is neither"):
        read_indices_file(path)
    path.write_text("# nothing\n")
    with pytest.raises(DataError, match="names no samples"):
        read_indices_file(path)
