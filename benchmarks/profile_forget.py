"""What one forget costs, part by part: cProfile over `unlearn forget`'s work on a checkpoint.

    python benchmarks/profile_forget.py runs/quick/original-s0-*.safetensors --class 1
    python benchmarks/profile_forget.py runs/slant/original-s0-*.safetensors --attribute Slanted

Prints the wall time of loading, planning and each step of the method (cumulative time of the
functions that make it, from cProfile, which slows Python-level calls a little), the method's
time as a forget records it without the profiler, and the import time of the package. The parts
are named by function, so a part the method no longer has reads 0. docs/benchmarks.md, "Where a
forget's time goes", holds the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import time

from unlearn_cli import api

# (label, function name as cProfile names it); nested parts are indented under their step
PARTS = [
    ("held-out data (for step 3)", "heldout_of"),
    ("the method (its recorded cost)", "unlearn"),
    ("step 0: training on D_r", "keep_training"),
    ("bank: encode, refit, interior, decode", "targets_bank"),
    ("  encoding the bank", "encode_all"),
    ("  interior test", "interior"),
    ("  decoding the targets", "decode_all"),
    ("step 2: redirect pass", "redirect_pass"),
    ("  picking targets", "redirect_targets"),
    ("  decoding (every decoder forward)", "decode_logits"),
    ("step 3: membership, its look", "look"),
    ("step 3: membership, its steps", "raise_to_targets"),
    ("  losses measured (probes, targets)", "losses"),
]


def import_seconds() -> float:
    """A fresh interpreter's time to import what a forget runs, less its bare start."""

    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    return run("import unlearn_cli.api") - run("pass")


def cumulative(stats: pstats.Stats, name: str) -> float:
    """Seconds spent in every function called `name`, calls nested in each other counted once."""
    table: dict = vars(stats)["stats"]  # pstats keeps its table in an undeclared attribute
    return sum(row[3] for (_, _, func), row in table.items() if func == name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--class", dest="klass", type=int)
    target.add_argument("--attribute")
    parser.add_argument("--method", default="redirect")
    args = parser.parse_args()
    device = api.resolve_device("cpu")
    timer = time.perf_counter()
    ckpt = api.load_checkpoint(args.checkpoint, "vae")
    loaded = time.perf_counter() - timer
    request = {"class": [args.klass]} if args.attribute is None else {"attribute": args.attribute}
    requests = api.parse_requests({"requests": [{"id": "r", **request}]}, "profile")
    timer = time.perf_counter()
    plan = api.plan_forget(ckpt, requests)
    planned = time.perf_counter() - timer
    method = api.get_method(args.method)
    cfg = api.configure(method, ckpt, {})
    unprofiled = api.run_forget(ckpt, plan, method, cfg, device).lineage[-1]["wall_seconds"]
    profiler = cProfile.Profile()
    timer = time.perf_counter()
    profiler.enable()
    child = api.run_forget(ckpt, plan, method, cfg, device)
    profiler.disable()
    total = time.perf_counter() - timer
    stats = pstats.Stats(profiler)
    rows = [
        ("import (torch and the package)", import_seconds()),
        ("loading the checkpoint", loaded),
    ]
    rows += [("loading and planning the data", planned), ("forget, profiled (run_forget)", total)]
    rows += [(label, cumulative(stats, name)) for label, name in PARTS]
    read = child.lineage[-1].get("stats", {}).get("forget_images_read")
    print(f"{'part':<42} {'seconds':>8}")
    for label, seconds in rows:
        print(f"{label:<42} {seconds:8.3f}")
    print(f"the method's recorded time without the profiler: {unprofiled} s")
    held = len(plan.forget or ())
    print(f"forgotten images read: {read if read is not None else 'all'} of {held}")


if __name__ == "__main__":
    main()
