"""Quality gates: limits on an evaluation's metrics that a CI job can fail on."""

from __future__ import annotations

GATES = {  # setting: (result group, key, label, True for a lower bound, what the metric needs)
    "max_fratio": ("privacy", "fratio", "fratio", False, "a judge and a class/attribute target"),
    "max_mia_auc": ("privacy", "mia_auc", "MIA AUC", False, "forgotten individual samples"),
    "min_is": ("utility", "is", "IS", True, "a judge"),
    "max_fid": ("utility", "fid", "FID", False, "a judge"),
    "min_precision": ("utility", "precision", "precision", True, "a judge"),
    "min_pixel_precision": ("utility", "pixel_precision", "pixel precision", True, "samples"),
}
JUDGED = tuple(g for g, (*_, needs) in GATES.items() if "judge" in needs)  # need a judge


def gates(result: dict, limits: dict[str, float | None]) -> list[tuple[str, str]]:
    """(gate, what failed) for each failed gate among `limits` (gate setting -> limit; None is
    no gate). A gate whose metric was not measured fails too, so that a CI job cannot pass by
    accident."""
    failed = []
    for gate, limit in limits.items():
        if limit is None:
            continue
        group, key, label, is_min, needs = GATES[gate]
        value = result[group][key]
        if value is None:
            failed.append((gate, f"{limit:g}: {label} was not measured (it needs {needs})"))
        elif value < limit if is_min else value > limit:
            failed.append((gate, f"{limit:g}: {label} is {value:.4g}"))
    return failed
