"""How a forget's cost grows with the forget set and with the training set.

    python benchmarks/growth.py ORIGINAL.safetensors [ORIGINAL ...]   # MNIST originals
    python benchmarks/growth.py --synthetic-celeba 162770             # the conv VAE, CelebA's size

For each MNIST original (its dataset and training are read from the checkpoint) the default
method forgets, one request at a time: 50 random training samples, 500, a random tenth of class
1, class 1, and classes 1 and 3; each row gives the forget's recorded wall time, the forgotten
images it read (`stats.forget_images_read`), and retraining's time, estimated from one epoch of
the original's recipe timed here on its training set: that epoch's time per image, times |D_r|,
times the original's epochs (retraining runs the recipe on D_r, so its batches, and its time,
scale with |D_r|; timing the epoch here keeps it on the same machine, in the same conditions).
With `--synthetic-celeba N`, N random 64x64x3 images
and the convolutional preset VAE, trained for one epoch on `--train-images` of them (to give it
weights, and the throughput from which retraining's time is estimated over `--epochs` passes);
the request is a random 42% of the images (about Male's share of CelebA). One JSON line per
row. Results: docs/benchmarks.md, "Cost that does not grow with the forget set".
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from unlearn_cli import api

CELEBA_SHARE = 0.42  # about the share of CelebA's images that are Male


def mnist_requests(ckpt: api.Checkpoint) -> list[tuple[str, dict]]:
    """The requests of the growth table, sized from the checkpoint's own training set."""
    data = api.training_set(ckpt.dataset)
    g = torch.Generator().manual_seed(0)
    ones = (data.labels == 1).nonzero().flatten()
    tenth = ones[torch.randperm(len(ones), generator=g)[: len(ones) // 10]]
    rows = [
        (f"{n} samples", {"indices": data.ids[torch.randperm(len(data), generator=g)[:n]].tolist()})
        for n in (50, 500)
        if n < len(data) // 2  # a request, not most of a small training set
    ]
    rows.append(("a tenth of class 1", {"indices": data.ids[tenth].tolist()}))
    rows += [("class 1", {"class": [1]}), ("classes 1 and 3", {"class": [1, 3]})]
    return rows


def seconds_per_image(ckpt: api.Checkpoint, device: torch.device) -> float:
    """One epoch of `ckpt`'s recipe on its training set, timed: seconds per image per epoch."""
    data = api.training_set(ckpt.dataset)
    recipe = api.TrainConfig.of(ckpt.training)
    once = api.TrainConfig(epochs=1, batch_size=recipe.batch_size, lr=recipe.lr, seed=recipe.seed)
    model = api.VAEConfig(**ckpt.model_config)
    return api.train_vae(ckpt.dataset, model, once, device, data=data).train_seconds / len(data)


def forget_mnist(path: str, device: torch.device) -> None:
    ckpt = api.load_checkpoint(path, "vae")
    per_image, epochs = seconds_per_image(ckpt, device), api.TrainConfig.of(ckpt.training).epochs
    method = api.get_method("redirect")
    cfg = api.configure(method, ckpt, {})
    for label, selector in mnist_requests(ckpt):
        requests = api.parse_requests({"requests": [{"id": "r", **selector}]}, "growth")
        plan = api.plan_forget(ckpt, requests)
        assert plan.forget is not None and plan.retain is not None  # a plan of a request
        forget, retain = len(plan.forget), len(plan.retain)
        child = api.run_forget(ckpt, plan, method, cfg, device)
        entry = child.lineage[-1]
        print(
            json.dumps(
                {
                    "dataset": f"{ckpt.dataset.name} {list(ckpt.dataset.classes or [])}",
                    "train_images": forget + retain,
                    "request": label,
                    "forget_images": forget,
                    "forget_images_read": entry["stats"].get("forget_images_read"),
                    "forget_seconds": entry["wall_seconds"],
                    "retrain_seconds_estimate": round(per_image * retain * epochs, 3),
                    "retrain_epochs": epochs,
                }
            ),
            flush=True,
        )


def synthetic(n: int, generator: torch.Generator) -> api.ImageData:
    """`n` random 64x64x3 images, the shape of the CelebA preset."""
    images = torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=generator)
    return api.ImageData(images, torch.zeros(n, dtype=torch.long), torch.arange(n))


def forget_synthetic(n: int, train_images: int, epochs: int, device: torch.device) -> None:
    g = torch.Generator().manual_seed(0)
    data = synthetic(n, g)
    spec = api.DatasetSpec(name="celeba", root="synthetic")
    cfg = api.TrainConfig(epochs=1, batch_size=128, seed=0)
    ckpt = api.train_vae(
        spec,
        api.VAEConfig.from_name("celeba"),
        cfg,
        device,
        data=data.subset(torch.arange(train_images)),
    )
    per_image = ckpt.train_seconds / train_images  # one pass, one image
    picked = torch.rand(n, generator=g) < CELEBA_SHARE
    forget, retain = (
        data.subset(picked.nonzero().flatten()),
        data.subset((~picked).nonzero().flatten()),
    )
    method = api.get_method("redirect")
    method_cfg = api.configure(method, ckpt, {})
    start = time.perf_counter()
    unlearned = method.unlearn(ckpt, forget, retain, method_cfg, device, api.NullProgress())
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "dataset": "synthetic 64x64x3 (conv VAE)",
                "train_images": n,
                "request": f"a random {CELEBA_SHARE:.0%}",
                "forget_images": len(forget),
                "forget_images_read": unlearned.stats.get("forget_images_read"),
                "forget_seconds": round(seconds, 2),
                "retrain_seconds_estimate": round(per_image * len(retain) * epochs, 1),
                "retrain_epochs": epochs,
            }
        ),
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("originals", nargs="*", help="MNIST VAE checkpoints")
    parser.add_argument("--synthetic-celeba", type=int, metavar="N", help="synthetic set size")
    parser.add_argument("--train-images", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=8, help="retraining's epochs, for its time")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = api.resolve_device(args.device)
    for path in args.originals:
        forget_mnist(path, device)
    if args.synthetic_celeba:
        forget_synthetic(args.synthetic_celeba, args.train_images, args.epochs, device)


if __name__ == "__main__":
    main()
