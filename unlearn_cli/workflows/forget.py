"""Forgetting as an auditable operation: plan the forget and retain sets from requests, run a
method, and write a child checkpoint whose lineage records what was done."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from unlearn_cli import __version__, distributed
from unlearn_cli.data.images import Samples, split_by_ids
from unlearn_cli.data.requests import (
    Request,
    count_in,
    ids_sha256,
    resolve,
    resolve_all,
    training_set,
    union,
)
from unlearn_cli.data.spec import folder_changes, load_split
from unlearn_cli.engine.checkpoint import Checkpoint, first_not_finite, save_checkpoint
from unlearn_cli.engine.files import (
    file_sha256,
    keep_aside,
    put_back,
    recorded_seconds,
    timestamp,
)
from unlearn_cli.engine.memory import peak, reset_peak
from unlearn_cli.engine.progress import NullProgress, Progress
from unlearn_cli.engine.train import start_clock, sync
from unlearn_cli.errors import DataError, DivergedError
from unlearn_cli.methods import MethodConfig, UnlearningMethod
from unlearn_cli.workflows.image_sets import probe_losses
from unlearn_cli.workflows.ledger import append_receipts, ledger_lock
from unlearn_cli.workflows.recheck import levels, recheck, request_elbo, samples_of

FOLDER_AS_IT_IS = (
    "forgetting works on the folder as it is now: requests are resolved against its current "
    "files and labels, and every current training file they do not select is retained"
)


@dataclass
class Plan:
    """What a forget operation will do, before it does it (all a dry run prints)."""

    new: list[Request]  # requests not yet in the lineage
    skipped: list[Request]  # requests the lineage says were already forgotten
    selected: dict[str, int]  # request id -> samples it selects
    already: dict[str, int] = field(default_factory=dict)  # of those, forgotten by earlier requests
    forget: Samples | None = None  # D_f: the samples of the new requests not forgotten before
    retain: Samples | None = None  # D_r: training set minus everything forgotten, now and before
    forget_ids: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    root: str | None = None  # the data folder the samples came from (None: the checkpoint's)
    notes: list[str] = field(default_factory=list)  # said before any work (a changed folder)
    train: Samples | None = None  # the whole training set the requests were resolved against

    @property
    def nothing_to_do(self) -> bool:
        return len(self.forget_ids) == 0

    @property
    def why_nothing(self) -> str:
        if not self.new:
            return "every request is already forgotten"
        return "every sample the new requests select was forgotten by earlier requests"


def plan_forget(ckpt: Checkpoint, requests: list[Request], root: str | None = None) -> Plan:
    """Resolve requests against the checkpoint's own training set (from its metadata)."""
    if not requests:
        raise DataError(
            "nothing to forget: name a class, an attribute, sample indices or a manifest of "
            "requests"
        )
    earlier = ckpt.forgotten_requests()
    done = {r.id for r in earlier}
    new = [r for r in requests if r.id not in done]
    skipped = [r for r in requests if r.id in done]
    if not new:
        return Plan(new, skipped, {})
    data = training_set(ckpt.dataset, root)
    changed = folder_changes(ckpt.dataset, data)
    notes = [f"note: {changed}; {FOLDER_AS_IT_IS}"] if changed else []
    ids = resolve_all(new, data, ckpt.dataset)
    empty = next((r for r in new if len(ids[r.id]) == 0), None)
    if empty is not None:
        raise DataError(f"request {empty.id} ({empty.describe()}) selects no training samples")
    # requests honoured before: a file removed since selects nothing, and needs nothing more
    before = union(list(resolve_all(earlier, data, ckpt.dataset, missing_ok=True).values()))
    selected = {r.id: len(ids[r.id]) for r in new}
    already = dict(zip(selected, count_in([ids[r.id] for r in new], before)))
    forget_ids = union(list(ids.values()))
    forget_ids = forget_ids[~torch.isin(forget_ids, before)]  # each sample is forgotten once
    if len(forget_ids) == 0:
        return Plan(new, skipped, selected, already, notes=notes)
    forget, _ = split_by_ids(data, forget_ids)
    _, retain = split_by_ids(data, union([forget_ids, before]))
    if len(retain) == 0:
        raise DataError(
            f"the requests select all {len(data)} training samples; nothing would be "
            "left to retain (forgetting everything is deleting the model)"
        )
    return Plan(new, skipped, selected, already, forget, retain, forget_ids, root, notes, data)


def heldout_of(ckpt: Checkpoint, requests: list[Request], root: str | None) -> Samples | None:
    """The checkpoint's dataset's test split without the classes and attributes `requests`
    forget (data the model should still explain, never saw), or None when there is none."""
    try:
        test = load_split(ckpt.dataset, "test", root)
    except DataError:
        return None
    kinds = [r for r in requests if r.selector in ("class", "attribute")]
    if not kinds:
        return test
    _, kept = split_by_ids(test, union([resolve(r, test, ckpt.dataset) for r in kinds]))
    return kept if len(kept) else None


def run_forget(
    ckpt: Checkpoint,
    plan: Plan,
    method: UnlearningMethod,
    cfg: MethodConfig,
    device: torch.device,
    progress: Progress | None = None,
) -> Checkpoint:
    """Run `method` on the plan and return the child checkpoint (not yet saved)."""
    assert plan.retain is not None  # plan_forget sets it whenever there is something to do
    progress = progress or NullProgress()
    assert plan.forget is not None and plan.train is not None
    probe = plan.retain.subset(torch.arange(min(PROBE_SIZE, len(plan.retain))))
    before = probe_loss(ckpt.model, probe, device)
    forget_probe = plan.forget.subset(torch.arange(min(PROBE_SIZE, len(plan.forget))))
    forget_before = probe_losses(ckpt.model, forget_probe, device)  # (N,)
    classes = samples_of(plan.new, plan.train, ckpt.dataset)  # what later forgets re-check
    classes_before = levels(ckpt.model, classes, device)
    reset_peak(device)
    start = start_clock(device)
    heldout = heldout_of(ckpt, [*ckpt.forgotten_requests(), *plan.new], plan.root)
    result = method.unlearn(ckpt, plan.forget, plan.retain, cfg, device, progress, heldout)
    model = result.model
    bad = first_not_finite(model.state_dict())
    if bad is not None:
        raise DivergedError(
            f"{method.name} made tensor {bad} NaN or infinite (its loss diverged); nothing "
            "written (lower its learning rate, or try another method)"
        )
    distributed.same_weights_(model)  # under torchrun: rank 0's result everywhere
    sync(device)
    seconds = time.perf_counter() - start
    used = peak(device)
    drift = probe_loss(model, probe, device) / before - 1
    forget_after = probe_losses(model, forget_probe, device)  # (N,)
    nothing = did_nothing(forget_before, forget_after, same_weights(ckpt.model, model))
    classes_after = levels(model, classes, device)
    rows, recheck_seconds = recheck(ckpt.lineage, plan.train, ckpt.dataset, model, device)
    entry = {
        "operation": "forget",
        "requests": [r.to_dict() for r in plan.new],
        "forgotten_count": len(plan.forget_ids),
        "forgotten_sha256": ids_sha256(plan.forget_ids),
        "retain_count": len(plan.retain),
        "method": method.name,
        "hyperparameters": dataclasses.asdict(cfg),  # type: ignore[call-overload]
        "stats": result.stats,  # e.g. fu's threshold and shifted fraction
        "seed": cfg.seed,
        "wall_seconds": recorded_seconds(seconds),
        "retain_drift": round(drift, 6),  # relative change of the retained data's loss
        # the forgotten samples' -ELBO before and after (a probe of them, fixed noise): the
        # evidence of a forget that did nothing
        "forget_elbo_before": round(forget_before.mean().item(), 4),
        "forget_elbo_after": round(forget_after.mean().item(), 4),
        "no_op": nothing,  # None, or why the forget looks like it did nothing
        # each class or attribute request's fixed sample of images, its -ELBO before and after
        # (what later forgets re-check against), and this forget's re-check of earlier ones
        "request_elbo": request_elbo(classes_before, classes_after),
        "recheck": rows,
        "recheck_seconds": recheck_seconds,
        **used,  # peak_rss_mb, cuda_max_allocated_mb (None off CUDA)
        "device": device.type,
        **distributed.world().to_dict(),  # world_size, and the backend (None: one process)
        "parent_sha256": ckpt.sha256,
        "tool_version": __version__,
        "created": timestamp(),
    }
    return dataclasses.replace(
        ckpt,
        model=model.cpu(),
        lineage=[*ckpt.lineage, entry],
        metrics={},
        created="",
        path=None,
        sha256=None,
    )


def status(request: Request, plan: Plan, skipped: set[str], dry_run: bool) -> str:
    """A request's line in the result: skipped, or (would be) forgotten, and any overlap."""
    if request.id in skipped:
        return "skipped: already forgotten"
    before = plan.already.get(request.id, 0)
    if plan.nothing_to_do:
        return "nothing new: forgotten before"
    done = "would forget" if dry_run else "forgotten"
    return f"{done} ({before} forgotten before)" if before else done


def summarise(
    checkpoint: Path, method: str, dry_run: bool, requests: list[Request], plan: Plan, dev
) -> dict:
    """`unlearn forget`'s result before anything runs: what each request selects, and the set
    sizes; `written` adds what a run wrote."""
    skipped = {r.id for r in plan.skipped}
    return {
        "checkpoint": str(checkpoint),
        "method": method,
        "dry_run": dry_run,
        "requests": [
            {
                "id": r.id,
                "selector": r.describe(),
                "selected": plan.selected.get(r.id),
                "status": status(r, plan, skipped, dry_run),
            }
            for r in requests
        ],
        "forget_samples": len(plan.forget_ids),
        "retain_samples": len(plan.retain or []),
        "out": None,
        "sha256": None,
        "wall_seconds": None,
        "retain_drift": None,  # the retained data's loss, relative change by this operation
        "cumulative_retain_drift": None,  # ... compounded over the whole lineage
        "no_op": None,  # why the forget looks like it did nothing, or None
        "recheck": None,  # earlier class and attribute requests, their -ELBO then and now
        "peak_rss_mb": None,  # the operation's peak resident memory
        "device": str(dev),
    }


def written(child: Checkpoint, out: Path) -> dict:
    """What a written child adds to the result: where, its sha256, the time and settings."""
    entry = child.lineage[-1]
    return dict(
        out=str(out),
        sha256=child.sha256,
        wall_seconds=entry["wall_seconds"],
        hyperparameters=entry["hyperparameters"],
        retain_drift=entry["retain_drift"],
        cumulative_retain_drift=round(cumulative_drift(child.lineage), 6),
        no_op=entry["no_op"],
        recheck=entry["recheck"],
        peak_rss_mb=entry["peak_rss_mb"],
    )


PROBE_SIZE = 512  # retained samples whose loss each forget measures before and after
RETRAIN_DRIFT = 0.10  # cumulative retain drift past which `unlearn forget` advises retraining


@torch.no_grad()
def probe_loss(model: torch.nn.Module, probe, device: torch.device) -> float:
    """Mean negative ELBO of the `probe` images: the yardstick of retain drift."""
    return probe_losses(model, probe, device).mean().item()


NOOP_Z = 2.0  # a change of the forgotten samples' mean -ELBO within this many standard errors
NOOP_RELATIVE = 1e-3  # ... or within this share of it, is no change


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two models hold exactly the same tensors."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def did_nothing(before: torch.Tensor, after: torch.Tensor, same: bool) -> str | None:
    """Why a forget looks like it did nothing, or None: it wrote its input's weights (`same`),
    or left the forgotten samples as well explained as before: the mean of the paired change
    of their -ELBO (`after` - `before`, the same noise) within NOOP_Z standard errors of 0, or
    within NOOP_RELATIVE of their -ELBO before."""
    if same:
        return "wrote weights equal to its input"
    change = (after - before).double()  # (N,)
    stderr = change.std().item() / len(change) ** 0.5 if len(change) > 1 else 0.0
    mean, level = change.mean().item(), before.double().mean().item()
    if abs(mean) <= max(NOOP_Z * stderr, NOOP_RELATIVE * abs(level)):
        return (
            f"left the forgotten samples' -ELBO within noise of its input's ({level:.2f} -> "
            f"{level + mean:.2f} nats)"
        )
    return None


def cumulative_drift(lineage: list[dict]) -> float:
    """How far the retained data's loss has moved over every forget in `lineage`, compounded:
    prod(1 + retain_drift) - 1 (entries written before it was recorded count as 0).

    Each forget leaves the retained data's loss a little higher; one by one the steps are small,
    batch after batch they add up, and a model retrained from scratch has none of it. Past
    RETRAIN_DRIFT (10%), `unlearn forget` says so (docs/benchmarks.md, "Streams of deletion
    requests")."""
    total = 1.0
    for entry in lineage:
        total *= 1 + entry.get("retain_drift", 0.0)
    return total - 1


def save_forget(
    child: Checkpoint,
    parent: Checkpoint,
    plan: Plan,
    out: Path,
    ledger: Path | None = None,
    overwrite: bool = True,
) -> str:
    """Write the child checkpoint and, with a ledger, one receipt per request; returns the
    child's sha256. Both happen under the ledger's lock, so concurrent forgets never interleave
    receipts. The checkpoint comes first, so no receipt ever names a file that is not there;
    when the ledger then cannot be written, `out` is put back as it was (with --in-place, the
    parent). With `overwrite=False`, an `out` that another process wrote meanwhile is an
    OutputError and nothing is written. Under torchrun rank 0 writes both, and every rank
    returns its sha256."""
    if distributed.is_main():
        with ledger_lock(ledger):
            replaced = file_sha256(out) if out.is_file() else None  # --in-place: the parent
            kept = keep_aside(out) if ledger is not None else None
            try:
                save_checkpoint(child, out, overwrite=overwrite)
                child.sha256 = file_sha256(out)
                if ledger is not None:
                    try:
                        append_receipts(ledger, receipts(child, parent, plan, out, replaced))
                    except BaseException:
                        copy, kept = kept, None  # a failed put_back leaves the copy on disk
                        put_back(copy, out)
                        raise
            finally:
                if kept is not None:
                    kept.unlink(missing_ok=True)
    child.sha256 = distributed.broadcast(child.sha256)
    return child.sha256


def receipts(
    child: Checkpoint, parent: Checkpoint, plan: Plan, out: Path, replaced: str | None = None
) -> list[dict]:
    """One receipt per request: that it was honoured, and by which file; `replaced`: the sha256
    of the file the child was written over, if any (the parent itself, with --in-place)."""
    entry = child.lineage[-1]
    extra = {"replaced_sha256": replaced} if replaced is not None else {}
    return [
        {
            "request_id": r.id,
            "selector": r.selector,
            "selected": plan.selected[r.id],
            "already_forgotten": plan.already.get(r.id, 0),
            "operation_forgotten": entry["forgotten_count"],
            "method": entry["method"],
            "parent_sha256": parent.sha256,
            "child_sha256": child.sha256,
            "checkpoint": str(out),
            "time": entry["created"],
            **extra,
        }
        for r in plan.new
    ]
