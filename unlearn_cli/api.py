"""The small public API that lab scripts use: the stable surface of `benchmarks/`.

A benchmark script drives the `unlearn` command or this module, never the modules below it, so
that the package can be reorganised without breaking the scripts that make the published tables.
The CLI's commands do the same work through the same functions: `unlearn train` is
`train_vae` / `train_judge`, `unlearn forget` is `parse_requests`, `plan_forget` and
`run_forget` with the method from `get_method` and `configure`, `unlearn evaluate` is
`evaluate`, and `unlearn compare` caches each forget under `forget_key`. `ulira_null` and
`ulira_test` are the per-sample membership test against several retrained models, which no
command runs (benchmarks/memorisation.py does).

Nothing in the package imports this module: it sits on top of it, as the CLI does.

    from unlearn_cli import api

    ckpt = api.load_checkpoint("vae.safetensors", "vae")
    requests = api.parse_requests({"requests": [{"id": "r1", "class": [1]}]}, "script")
    method, device = api.get_method("redirect"), api.resolve_device("cpu")
    cfg = api.configure(method, ckpt, {})
    forgotten = api.run_forget(ckpt, api.plan_forget(ckpt, requests), method, cfg, device)
    report = api.evaluate(forgotten, None, samples=1000, device=device)
"""

from __future__ import annotations

import torch

from unlearn_cli.data.images import ImageData, split_by_ids
from unlearn_cli.data.requests import Request, parse_requests, training_set
from unlearn_cli.data.spec import DatasetSpec, judge_classes, load_split
from unlearn_cli.distributed import is_main, world
from unlearn_cli.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from unlearn_cli.engine.device import resolve_device, seed_everything
from unlearn_cli.engine.files import json_text
from unlearn_cli.engine.progress import NullProgress
from unlearn_cli.engine.train import TrainConfig, make_loader, to_device, train_judge, train_vae
from unlearn_cli.methods import configure, get_method, scoped_parameters, train_only
from unlearn_cli.methods.redirect import encode_all
from unlearn_cli.methods.settings import all_settings
from unlearn_cli.methods.steps import endless, make_optimizer
from unlearn_cli.methods.surgery import surgery_step
from unlearn_cli.metrics.utility import fid_of_features
from unlearn_cli.models import VAE, JudgeConfig, VAEConfig
from unlearn_cli.workflows.evaluate import evaluate
from unlearn_cli.workflows.forget import cumulative_drift, plan_forget, run_forget
from unlearn_cli.workflows.gates import LIKE_REFERENCE
from unlearn_cli.workflows.image_sets import eval_sets
from unlearn_cli.workflows.runner import forget_key
from unlearn_cli.workflows.tables import mark_floor
from unlearn_cli.workflows.targets import Target, parse_target
from unlearn_cli.workflows.ulira import MIN_REFERENCES, ulira_null, ulira_test

__all__ = [
    # checkpoints and devices
    "Checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "resolve_device",
    "seed_everything",
    "world",
    "is_main",
    # data and deletion requests
    "DatasetSpec",
    "ImageData",
    "load_split",
    "training_set",
    "split_by_ids",
    "Request",
    "parse_requests",
    "Target",
    "parse_target",
    # training
    "TrainConfig",
    "VAEConfig",
    "JudgeConfig",
    "VAE",
    "train_vae",
    "train_judge",
    # forgetting
    "get_method",
    "configure",
    "all_settings",
    "plan_forget",
    "run_forget",
    "forget_key",
    "NullProgress",
    "cumulative_drift",
    # measuring
    "evaluate",
    "eval_sets",
    "fid_of_features",
    "judge_classes",
    "LIKE_REFERENCE",
    "mark_floor",
    "ulira_null",
    "ulira_test",
    "MIN_REFERENCES",
    "encode",
    "json_text",
    # the surgery pass's pieces, for a script that inspects the optimizer's steps themselves
    "make_loader",
    "to_device",
    "scoped_parameters",
    "train_only",
    "endless",
    "make_optimizer",
    "surgery_step",
]


def encode(model: VAE, data, device: torch.device) -> torch.Tensor:
    """The posterior means of every sample of `data` under `model`'s encoder: (N, z) on
    `device`, in `data`'s order (redirect encodes its bank of latents so)."""
    mu, _ = encode_all(model, data, device)  # (N, z), (N, z)
    return mu
