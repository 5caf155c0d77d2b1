"""The defaults a user relies on, each in one place: the command line's help, `compare`'s
experiment files, the methods that reuse the original training's settings and the evaluation
all read them from here. Torch-free, so that `unlearn --help` can show them."""

from __future__ import annotations

# Training (`unlearn train`, and the retraining a `retrain` run repeats)
EPOCHS = 20  # the MNIST VAE's test ELBO stops improving noticeably around here
JUDGE_EPOCHS = 3  # the MNIST judge is past 98% held-out accuracy after three
BATCH_SIZE = 128  # also the batch size forget methods reuse, as in the paper
LR = 1e-3  # Adam; the usual VAE learning rate
SEED = 0

# Evaluation (`unlearn evaluate`, and every evaluation `unlearn compare` runs)
SAMPLES = 10_000  # generated images per evaluation, as in the paper
EVAL_SEED = 0
EVAL_BATCH_SIZE = 500  # images per forward pass; changes no result, only memory and speed

# Models (`unlearn train` on a folder dataset chooses by the images)
SMALL_GREY = 32  # grey images up to this side get MNIST's MLP VAE and AllCNN judge; others conv

MNIST_DIGITS = tuple(range(10))  # the digits an MNIST model learns unless told `classes`


def training(recorded: dict, kind: str = "vae") -> dict:
    """Epochs, batch size, learning rate and seed: those `recorded` (a checkpoint's training
    metadata, a config's `train:` or `judge:` section), the defaults for the rest."""
    return {
        "epochs": recorded.get("epochs", EPOCHS if kind == "vae" else JUDGE_EPOCHS),
        "batch_size": recorded.get("batch_size", BATCH_SIZE),
        "lr": recorded.get("lr", LR),
        "seed": recorded.get("seed", SEED),
    }


def evaluation(given: dict) -> dict:
    """Samples, seed and batch size of an evaluation: those `given`, the defaults for the rest."""
    return {"samples": SAMPLES, "seed": EVAL_SEED, "batch_size": EVAL_BATCH_SIZE, **given}
