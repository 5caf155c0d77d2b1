"""The table of a comparison: one row per method, the mean and spread over seeds of each column,
and the best unlearning method of each ranked column.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

# Columns: key in an evaluate() result, header, direction: +1 higher is better, -1 lower,
# RETRAIN closest to the RETRAIN row's (IS over the judge's classes rewards still drawing the
# forgotten class, so more is not better), 0 no ranking.
RETRAIN = "retrain"
COLUMNS = (  # grouped: privacy, then utility, then cost
    ("privacy.fratio", "fratio", -1),
    ("privacy.mia_auc", "MIA AUC", 0),  # 0.5 is ideal
    # after the few-shot relearning attack, when an experiment asks for it (relearn_steps)
    ("privacy.relearn_fratio_fewshot", "relearned", -1),
    ("privacy.relearn_mia_auc_fewshot", "relearned MIA", 0),
    ("privacy.relearn_fratio_benign", "benign relearned", -1),
    ("privacy.relearn_mia_auc_benign", "benign relearned MIA", 0),
    ("utility.is", "IS", RETRAIN),
    ("utility.fid", "FID", -1),
    ("utility.precision", "precision", +1),
    ("utility.pixel_precision", "pixel precision", +1),
    ("utility.recall", "recall", +1),
    ("utility.fid_reference", "FID vs RETRAIN", -1),
    ("utility.retain_elbo", "retain -ELBO", -1),
    ("utility.forget_elbo", "forget -ELBO", 0),  # should approach RETRAIN's, not a direction
    ("cost.seconds", "time (s)", -1),
    ("cost.percent_of_retrain", "time (%)", -1),
)
# The columns a second retraining can be held against: what the model is as handed over (not
# its cost, nor FID vs RETRAIN, which RETRAIN's own row measures against itself).
FLOORED = tuple(
    dotted
    for dotted, _, _ in COLUMNS
    if not dotted.startswith("cost.") and dotted != "utility.fid_reference"
)
# The columns that decide whether a method forgot like retraining (the bar of `evaluate
# --like-reference`, and the few-shot relearning attack where an experiment runs it) and what it
# cost: a compare table's default; --wide shows every column.
DECIDING = (
    "privacy.fratio",
    "privacy.mia_auc",
    "privacy.relearn_fratio_fewshot",
    "privacy.relearn_mia_auc_fewshot",
    "utility.fid",
    "utility.precision",
    "utility.retain_elbo",
    "cost.seconds",
    "cost.percent_of_retrain",
)


def lookup(result: dict, dotted: str):
    """The value at "group.name" in an evaluate() result, or None."""
    group, name = dotted.split(".")
    return (result.get(group) or {}).get(name)


def summarise(label: str, title: str, results: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds of every column."""
    cells: dict[str, dict[str, Any] | None] = {}
    for dotted, _, _ in COLUMNS:
        values = [v for v in (lookup(r, dotted) for r in results) if v is not None]
        if not values:
            cells[dotted] = None
            continue
        mean = sum(values) / len(values)
        std = (
            math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            if len(values) > 1
            else 0.0
        )
        cells[dotted] = {
            "mean": mean, "std": std, "values": values, "best": False, "miss": False
        }  # fmt: skip
    return {"label": label, "title": title, "cells": cells, "models": [r["model"] for r in results]}


def mark_best(rows: list[dict]) -> None:
    """Flag the best unlearning method (not BEFORE, not RETRAIN) of each ranked column."""
    contenders = [r for r in rows if r["label"] not in ("BEFORE", "RETRAIN")]
    retrain = next((r for r in rows if r["label"] == "RETRAIN"), None)
    for dotted, _, direction in COLUMNS:
        scored = [r for r in contenders if r["cells"][dotted] is not None]
        if not direction or len(scored) < 2:
            continue
        if direction == RETRAIN:
            if retrain is None or retrain["cells"][dotted] is None:
                continue
            goal = retrain["cells"][dotted]["mean"]
            score = {id(r): -abs(r["cells"][dotted]["mean"] - goal) for r in scored}
        else:
            score = {id(r): direction * r["cells"][dotted]["mean"] for r in scored}
        best = max(score.values())
        for r in scored:  # ties share the bold
            r["cells"][dotted]["best"] = score[id(r)] == best


def mark_misses(rows: list[dict]) -> None:
    """Flag each cell of an unlearning row where some seed misses the bar of `unlearn evaluate
    --like-reference` against the RETRAIN row's value on the same seed (`miss`). The time in
    percent of retraining shows the same miss as the time in seconds."""
    from unlearn_cli.workflows.gates import LIKE_REFERENCE

    retrain = next((r for r in rows if r["label"] == "RETRAIN"), None)
    if retrain is None:
        return
    for row in rows:
        if row["label"] in ("BEFORE", "RETRAIN"):
            continue
        for bar in LIKE_REFERENCE:
            dotted = f"{bar.group}.{bar.key}"
            cell, ref = row["cells"][dotted], retrain["cells"][dotted]
            if cell is None or ref is None or len(cell["values"]) != len(ref["values"]):
                continue  # a seed without the value: nothing to hold against the bar
            cell["miss"] = not all(map(bar.passes, cell["values"], ref["values"]))
        seconds, percent = row["cells"]["cost.seconds"], row["cells"]["cost.percent_of_retrain"]
        if seconds is not None and percent is not None:
            percent["miss"] = seconds["miss"]


def mark_floor(rows: list[dict]) -> dict[str, float]:
    """Retraining's own noise as the yardstick. The floor of a column is the mean difference
    between two RETRAIN seeds' values (every pair); each unlearning row's cell gets
    `within_floor`: its mean distance to the same seed's RETRAIN is no more than the floor, as
    close to retraining as another retraining is. Returns {column: floor}; empty with fewer
    than two seeds."""
    retrain = next((r for r in rows if r["label"] == "RETRAIN"), None)
    if retrain is None:
        return {}
    floor = {}
    for dotted in FLOORED:
        ref = retrain["cells"].get(dotted)  # a report of an older version may lack a column
        if ref is None or len(ref["values"]) < 2:
            continue
        pairs = list(combinations(ref["values"], 2))
        floor[dotted] = sum(abs(a - b) for a, b in pairs) / len(pairs)
    for row in rows:
        if row["label"] in ("BEFORE", "RETRAIN"):
            continue
        for dotted, limit in floor.items():
            cell, refs = row["cells"].get(dotted), retrain["cells"][dotted]["values"]
            if cell is None or len(cell["values"]) != len(refs):
                continue
            distance = sum(abs(v - r) for v, r in zip(cell["values"], refs)) / len(refs)
            cell["within_floor"] = distance <= limit
    return floor
