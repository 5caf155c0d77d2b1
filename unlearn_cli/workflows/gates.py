"""Quality gates: limits on an evaluation's metrics that a CI job can fail on."""

from __future__ import annotations

GATES = {  # flag: (result group, key, label, True for a lower bound, what the metric needs)
    "--max-fratio": ("privacy", "fratio", "fratio", False, "--judge and a class/attr target"),
    "--max-mia-auc": ("privacy", "mia_auc", "MIA AUC", False, "forgotten individual samples"),
    "--min-is": ("utility", "is", "IS", True, "--judge"),
    "--max-fid": ("utility", "fid", "FID", False, "--judge"),
    "--min-precision": ("utility", "precision", "precision", True, "--judge"),
    "--min-pixel-precision": ("utility", "pixel_precision", "pixel precision", True, "samples"),
}


def gates(
    result: dict,
    max_fratio: float | None = None,
    max_fid: float | None = None,
    max_mia_auc: float | None = None,
    min_is: float | None = None,
    min_precision: float | None = None,
    min_pixel_precision: float | None = None,
) -> list[str]:
    """One message per failed quality gate. A gate whose metric was not measured fails too, so
    that a CI job cannot pass by accident."""
    limits = {
        "--max-fratio": max_fratio,
        "--max-mia-auc": max_mia_auc,
        "--min-is": min_is,
        "--max-fid": max_fid,
        "--min-precision": min_precision,
        "--min-pixel-precision": min_pixel_precision,
    }
    failed = []
    for flag, limit in limits.items():
        if limit is None:
            continue
        group, key, label, is_min, needs = GATES[flag]
        value = result[group][key]
        if value is None:
            failed.append(f"{flag} {limit:g}: {label} was not measured (it needs {needs})")
        elif value < limit if is_min else value > limit:
            failed.append(f"{flag} {limit:g}: {label} is {value:.4g}")
    return failed
