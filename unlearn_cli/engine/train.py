"""Training from scratch: generators (VAEs) and judge classifiers, on CPU or CUDA."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from unlearn_cli import defaults, distributed
from unlearn_cli.config import check_settings
from unlearn_cli.data.images import ImageData, collate
from unlearn_cli.data.requests import ids_sha256, training_set
from unlearn_cli.data.spec import DatasetSpec, load_split, stamped
from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.engine.device import seed_everything
from unlearn_cli.engine.files import recorded_seconds
from unlearn_cli.engine.memory import peak, reset_peak
from unlearn_cli.engine.progress import NullProgress, Progress
from unlearn_cli.errors import DivergedError, UsageError


@dataclass
class TrainConfig:
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    lr: float = defaults.LR
    seed: int = defaults.SEED

    def __post_init__(self):
        check_settings(self, positive=("lr",), minimum={"epochs": 1, "batch_size": 1})

    @classmethod
    def of(cls, recorded: dict, kind: str = "vae") -> TrainConfig:
        """The settings `recorded` (a checkpoint's training metadata, a config section), with
        the defaults of a VAE or a judge for the rest."""
        return cls(**defaults.training(recorded, kind))

    def to_dict(self) -> dict:
        return asdict(self)


def make_loader(
    data,
    batch_size: int,
    device: torch.device,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    shard: bool = False,
    seed: int = 0,
) -> DataLoader:
    """Batches of (image, label, id). In-memory data is sliced whole batches at a time; image
    files are decoded by worker processes. Pinned memory only where it helps (CUDA).

    With `shard` under torchrun, `batch_size` is the global batch: each of the N ranks reads
    1/N of it, from its own share of `data` (torch's DistributedSampler, shuffled with `seed`;
    call `next_epoch` before each pass)."""
    in_memory = isinstance(data, ImageData)
    workers = 0 if in_memory else min(4, os.cpu_count() or 1)
    sampler: DistributedSampler | None = None
    w = distributed.world()
    if shard and w.size > 1:
        batch_size = rank_batch_size(batch_size)
        sampler = DistributedSampler(data, w.size, w.rank, shuffle=shuffle, seed=seed)
        shuffle, generator = False, None
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        sampler=sampler,
        collate_fn=collate,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def rank_batch_size(batch_size: int) -> int:
    """This rank's share of a global batch; a batch that does not divide is refused, so that N
    processes follow the same recipe as one."""
    size = distributed.world().size
    if batch_size % size:
        raise UsageError(
            f"batch size {batch_size} does not divide among {size} processes; use a multiple "
            f"of {size} (it is the global batch, split across ranks)"
        )
    return batch_size // size


def next_epoch(loader: DataLoader, epoch: int) -> None:
    """Reshuffle a sharded loader for pass `epoch` (a no-op on one process)."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)


class LossOf(nn.Module):
    """A model and its training loss as one module, so DistributedDataParallel sees the loss's
    forward pass (and syncs the gradients of its backward)."""

    def __init__(self, model: nn.Module, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.model, x, y)


def to_device(batch, device: torch.device):
    x, y, ids = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True), ids


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall times measure the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def start_clock(device: torch.device) -> float:
    """The start of a timed run: queued GPU work done, and torch's one-time lazy import of
    torch._dynamo (the first optimizer of a process triggers it, about 3 s on a CPU) paid
    beforehand, so that a wall time measures the work and not the import."""
    import torch._dynamo  # noqa: F401

    sync(device)
    return time.perf_counter()


def vae_config(spec: DatasetSpec, **overrides):
    """The VAE for `spec`'s images: the preset its size and channels call for, overridden."""
    from unlearn_cli.models import VAEConfig

    return VAEConfig.for_images(spec.channels, spec.image_size, **overrides)


def judge_config(spec: DatasetSpec, **overrides):
    """The judge for `spec`'s images and classes (or attribute yes/no), overridden."""
    from unlearn_cli.models import JudgeConfig

    overrides.setdefault("num_classes", spec.num_classes)
    return JudgeConfig.for_images(spec.channels, spec.image_size, **overrides)


def judge_target(spec: DatasetSpec, data) -> Callable[[torch.Tensor], torch.Tensor]:
    """Maps dataset labels to judge class indices: a digit to its position among the model's
    classes, a folder's one-hot class flags to the class's position, or an attribute flag to
    0/1."""
    if spec.name == "mnist":
        lut = torch.full((10,), -1, dtype=torch.long)
        for i, c in enumerate(spec.digits):
            lut[c] = i
        return lambda labels: lut.to(labels.device)[labels]
    if spec.attribute is None:  # a folder's classes: labels (N, K + A), one-hot in the first K
        classes = len(spec.classes or ())
        return lambda labels: labels[:, :classes].argmax(1)
    k = data.attribute_index(spec.attribute)
    return lambda labels: labels[:, k].long()


def fit(
    model: nn.Module,
    data,
    cfg: TrainConfig,
    device: torch.device,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    progress: Progress,
    what: str,
) -> list[float]:
    """Adam over `cfg.epochs` shuffled passes; returns the mean loss of each epoch.

    Under torchrun the model trains as DistributedDataParallel: each rank reads its share of
    every global batch of `cfg.batch_size`, and the gradients are averaged over ranks."""
    generator = seed_everything(cfg.seed)
    distributed.decorrelate(cfg.seed)  # each rank its own noise for its share of a batch
    model.to(device).train()
    step: nn.Module = LossOf(model, loss_fn)
    if distributed.world().size > 1:
        if device.type == "cuda":  # batch statistics over the global batch (nccl only)
            step = nn.SyncBatchNorm.convert_sync_batchnorm(step)
        step = DistributedDataParallel(step, device_ids=[device] if device.type == "cuda" else None)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loader = make_loader(data, cfg.batch_size, device, True, generator, shard=True, seed=cfg.seed)
    losses = []
    for epoch in range(cfg.epochs):
        next_epoch(loader, epoch)
        progress.start(f"{what} epoch {epoch + 1}/{cfg.epochs}", len(loader))
        total, count = torch.zeros((), device=device), 0  # on this rank
        for batch in loader:
            x, y, _ = to_device(batch, device)
            loss = step(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(x)
            count += len(x)
            progress.advance(1)
        both = distributed.sum_(torch.stack([total, torch.tensor(float(count), device=device)]))
        losses.append(both[0].item() / both[1].item())
        if not math.isfinite(losses[-1]):
            raise DivergedError(
                f"{what} training diverged: its loss became {losses[-1]} in epoch {epoch + 1}; "
                "nothing written (lower the learning rate)"
            )
        progress.done(f"{what} epoch {epoch + 1}/{cfg.epochs}: loss {losses[-1]:.4f}")
    model.eval()
    return losses


def train_vae(
    spec: DatasetSpec,
    model_cfg,
    cfg: TrainConfig,
    device: torch.device,
    progress: Progress | None = None,
    root: str | None = None,
    data=None,
) -> Checkpoint:
    """Train a VAE from scratch on `spec`'s training set (minus its exclusions)."""
    from unlearn_cli.models import VAE

    data = data if data is not None else training_set(spec, root)
    if len(data) == 0:
        raise UsageError(f"no training samples left in {spec.describe()}")
    ckpt = _from_scratch(
        "vae",
        VAE.from_config,
        model_cfg,
        spec,
        data,
        cfg,
        device,
        lambda m, x, y: m.loss(x),
        progress or NullProgress(),
    )
    ckpt.model.cpu()
    return ckpt


def _from_scratch(kind, build, model_cfg, spec, data, cfg, device, loss_fn, progress):
    """Seed, build, fit and time a model; the checkpoint records how it was made."""
    seed_everything(cfg.seed)
    model = build(model_cfg)
    reset_peak(device)
    start = start_clock(device)
    losses = fit(model, data, cfg, device, loss_fn, progress, kind)
    sync(device)
    seconds = time.perf_counter() - start
    used = {k: v for k, v in peak(device).items() if v is not None}
    return Checkpoint(
        kind=kind,
        model=model,
        model_config=model_cfg.to_dict(),
        dataset=stamped(spec, data),  # a folder's: which files it was trained on
        training={**cfg.to_dict(), "device": device.type, **distributed.world().to_dict()},
        train_ids_sha256=ids_sha256(data.ids),
        num_samples=len(data),
        train_seconds=recorded_seconds(seconds),
        metrics={"final_train_loss": round(losses[-1], 4), **used},
    )


@torch.no_grad()
def accuracy(model: nn.Module, data, target, device: torch.device, batch_size: int = 512) -> float:
    model.to(device).eval()
    correct = 0
    for batch in make_loader(data, batch_size, device):
        x, y, _ = to_device(batch, device)
        correct += (model(x).argmax(1) == target(y)).sum().item()
    return correct / max(len(data), 1)


def train_judge(
    spec: DatasetSpec,
    model_cfg,
    cfg: TrainConfig,
    device: torch.device,
    progress: Progress | None = None,
    root: str | None = None,
) -> Checkpoint:
    """Train a judge classifier on the whole training split; record its held-out accuracy."""
    from unlearn_cli.models import build_judge

    progress = progress or NullProgress()
    data = load_split(spec, root=root)
    target = judge_target(spec, data)
    ckpt = _from_scratch(
        "judge",
        build_judge,
        model_cfg,
        spec,
        data,
        cfg,
        device,
        lambda m, x, y: F.cross_entropy(m(x), target(y)),
        progress,
    )
    test = load_split(spec, split="test", root=root)
    acc = accuracy(ckpt.model, test, judge_target(spec, test), device)
    progress.log(f"judge held-out accuracy: {acc:.4f} on {len(test)} test images")
    ckpt.metrics.update(test_accuracy=round(acc, 5), test_samples=len(test))
    ckpt.model.cpu()
    return ckpt
