"""Quality gates: limits on an evaluation's metrics that a CI job can fail on."""

from __future__ import annotations

from typing import NamedTuple


class Gate(NamedTuple):
    group: str  # the result's group: privacy or utility
    key: str  # the metric's key in that group
    label: str  # how a failure names it
    is_min: bool  # True: a lower bound
    needs: str  # what the metric needs, for the message when it was not measured
    judged: bool  # the metric needs a judge (evaluate refuses such a gate without --judge)


GATES = {  # evaluate's setting -> its gate
    "max_fratio": Gate(
        "privacy", "fratio", "fratio", False, "a judge and a class/attribute target", True
    ),
    "max_mia_auc": Gate(
        "privacy", "mia_auc", "MIA AUC", False, "forgotten individual samples", False
    ),
    "min_is": Gate("utility", "is", "IS", True, "a judge", True),
    "max_fid": Gate("utility", "fid", "FID", False, "a judge", True),
    "min_precision": Gate("utility", "precision", "precision", True, "a judge", True),
    "min_pixel_precision": Gate(
        "utility", "pixel_precision", "pixel precision", True, "samples", False
    ),
}
JUDGED = tuple(name for name, gate in GATES.items() if gate.judged)


def gates(result: dict, limits: dict[str, float | None]) -> list[tuple[str, str]]:
    """(gate, what failed) for each failed gate among `limits` (gate setting -> limit; None is
    no gate). A gate whose metric was not measured fails too, so that a CI job cannot pass by
    accident."""
    failed = []
    for gate, limit in limits.items():
        if limit is None:
            continue
        g = GATES[gate]
        value = result[g.group][g.key]
        if value is None:
            failed.append((gate, f"{limit:g}: {g.label} was not measured (it needs {g.needs})"))
        elif value < limit if g.is_min else value > limit:
            failed.append((gate, f"{limit:g}: {g.label} is {value:.4g}"))
    return failed
