"""Planning a forget on an in-memory stand-in for MNIST's 60,000 training samples: requests that
overlap earlier ones, and batches at production scale (no data files, no training)."""

from __future__ import annotations

import pytest
import torch

import unlearn_cli.workflows.forget as forget_module
from unlearn_cli.data.images import ImageData
from unlearn_cli.data.requests import Request, count_in, resolve, resolve_all
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.errors import DataError
from unlearn_cli.workflows.forget import plan_forget

N = 60_000
SPEC = DatasetSpec(name="mnist")


@pytest.fixture(scope="module")
def data() -> ImageData:
    """60,000 one-pixel images with MNIST's identities and cycling labels 0-9."""
    ids = torch.arange(N)
    return ImageData(torch.zeros(N, 1, 1, 1, dtype=torch.uint8), ids % 10, ids)


@pytest.fixture(autouse=True)
def fake_training_set(monkeypatch, data):
    monkeypatch.setattr(forget_module, "training_set", lambda spec, root=None: data)


def checkpoint(*earlier: list[Request]) -> Checkpoint:
    """A checkpoint whose lineage holds one operation per list of requests."""
    lineage = [{"operation": "forget", "requests": [r.to_dict() for r in op]} for op in earlier]
    return Checkpoint("vae", torch.nn.Identity(), {}, SPEC, {}, lineage=lineage)


def indices(rid: str, *values: int) -> Request:
    return Request(rid, "indices", values)


def test_a_request_overlapping_an_earlier_one_forgets_only_the_new_samples():
    ckpt = checkpoint([indices("r1", 1, 2, 3)], [indices("r2", 10)])
    plan = plan_forget(ckpt, [indices("r3", 2, 3, 4, 5), indices("r4", 5, 6)])
    assert plan.forget_ids.tolist() == [4, 5, 6]
    assert plan.selected == {"r3": 4, "r4": 2} and plan.already == {"r3": 2, "r4": 0}
    assert plan.forget is not None and plan.forget.ids.tolist() == [4, 5, 6]
    assert plan.retain is not None and len(plan.retain) == N - 7
    assert not torch.isin(plan.retain.ids, torch.tensor([1, 2, 3, 4, 5, 6, 10])).any()


def test_new_requests_that_select_only_forgotten_samples_leave_nothing_to_do():
    ckpt = checkpoint([indices("r1", 1, 2, 3), Request("c", "class", (7,))])
    plan = plan_forget(ckpt, [indices("r1", 1, 2, 3), indices("r2", 2, 17)])
    assert [r.id for r in plan.skipped] == ["r1"] and [r.id for r in plan.new] == ["r2"]
    assert plan.nothing_to_do and plan.already == {"r2": 2} and plan.forget is None
    assert "forgotten by earlier requests" in plan.why_nothing
    assert plan_forget(ckpt, [indices("r1", 1)]).why_nothing == "every request is already forgotten"


def test_vectorised_resolution_matches_one_request_at_a_time(data):
    g = torch.Generator().manual_seed(0)
    requests = [
        indices(f"r{n}", *torch.randint(0, N, (int(k),), generator=g).tolist())
        for n, k in enumerate(torch.randint(1, 40, (60,), generator=g))
    ]
    requests.insert(30, Request("c", "class", (3, 4)))
    fast = resolve_all(requests, data, SPEC)
    assert list(fast) == [r.id for r in requests]
    for r in requests:
        assert torch.equal(fast[r.id], resolve(r, data, SPEC)), r.id
    pool = torch.arange(0, N, 3)
    assert count_in(list(fast.values()), pool) == [
        int(torch.isin(ids, pool).sum()) for ids in fast.values()
    ]


def test_an_unknown_index_names_its_request(data):
    requests = [indices("a", 1, 2), indices("b", 3, N + 5), indices("c", N + 9)]
    with pytest.raises(DataError, match=f"request b: index {N + 5} is not a sample"):
        resolve_all(requests, data, SPEC)


def test_ten_thousand_requests_plan_with_what_each_selects():
    g = torch.Generator().manual_seed(1)
    picked = torch.randperm(N, generator=g)[:10_000].tolist()
    earlier = [indices(f"old-{n}", i) for n, i in enumerate(picked[:2_000])]
    requests = [indices(f"gdpr-{n:05d}", i) for n, i in enumerate(picked)]
    plan = plan_forget(checkpoint(earlier), requests)
    assert len(plan.new) == 10_000 and len(plan.forget_ids) == 8_000
    assert sum(plan.already.values()) == 2_000


def test_one_request_of_fifty_thousand_indices_plans_whole():
    g = torch.Generator().manual_seed(2)
    picked = torch.randperm(N, generator=g)[:50_000].tolist()
    plan = plan_forget(checkpoint(), [indices("big", *picked)])
    assert plan.selected == {"big": 50_000} and len(plan.retain or []) == N - 50_000
    assert sorted(plan.forget_ids.tolist()) == sorted(picked)
