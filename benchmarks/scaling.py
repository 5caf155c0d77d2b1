"""Training throughput (images per second) of the preset VAEs on 1 or N processes.

    python benchmarks/scaling.py                                    # one process
    torchrun --standalone --nproc-per-node 2 benchmarks/scaling.py  # two (gloo on CPU)

Trains each preset VAE (mnist: MLP on 28x28x1; celeba: convolutional on 64x64x3) for one epoch
on synthetic in-memory images of its shape, through the same engine as `unlearn train`
(DistributedDataParallel and a DistributedSampler under torchrun), with the global batch of
128, and prints one JSON line per model from rank 0. Synthetic images leave JPEG decoding out:
what scales here is the model's compute and the gradient all-reduce. Results:
docs/benchmarks.md, "Scaling".
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from unlearn_cli import api
from unlearn_cli.api import (
    DatasetSpec,
    ImageData,
    TrainConfig,
    VAEConfig,
    resolve_device,
    train_vae,
)

SHAPES = {"mnist": (1, 28), "celeba": (3, 64)}


def synthetic(name: str, n: int) -> ImageData:
    channels, size = SHAPES[name]
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    return ImageData(images, torch.zeros(n, dtype=torch.long), torch.arange(n))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--mnist-images", type=int, default=20480)
    parser.add_argument("--celeba-images", type=int, default=2048)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    world = api.world()
    for name, n in (("mnist", args.mnist_images), ("celeba", args.celeba_images)):
        spec = DatasetSpec(name=name, root="synthetic") if name == "celeba" else DatasetSpec()
        cfg = TrainConfig(epochs=1, batch_size=128, seed=0)
        ckpt = train_vae(spec, VAEConfig.from_name(name), cfg, device, data=synthetic(name, n))
        if api.is_main():
            row = {
                "model": f"{name} preset VAE",
                "images": n,
                "processes": world.size,
                "backend": world.backend,
                "device": device.type,
                "threads_per_process": torch.get_num_threads(),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "seconds": ckpt.train_seconds,
                "images_per_second": round(n / ckpt.train_seconds, 1),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
