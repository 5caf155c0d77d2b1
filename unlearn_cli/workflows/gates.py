"""Quality gates: limits on an evaluation's metrics that a CI job can fail on."""

from __future__ import annotations

import math
from typing import NamedTuple

Z95 = 1.96  # a 95% interval's half-width in standard errors
SPREAD_SEEDS = 3  # sample seeds whose FID and precision spread a gate on either reads


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
    "max_relearn_gap": Gate(
        "privacy",
        "relearn_gap",
        "relearned fratio (MIA AUC for samples) minus the reference's",
        False,
        "--relearn-steps and --reference",
        False,
    ),
}
JUDGED = tuple(name for name, gate in GATES.items() if gate.judged)


def within(value: float, limit: float, is_min: bool) -> bool:
    """Whether `value` keeps to `limit`: at least it when `is_min`, else at most it."""
    return value >= limit if is_min else value <= limit


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
        elif not within(value, limit, g.is_min):
            failed.append((gate, f"{limit:g}: {g.label} is {value:.4g}"))
    return failed


class Bar(NamedTuple):
    """One check of "forgetting like retraining": the model's metric against the limit
    `scale` x the reference's + `offset` (a lower bound when `is_min`)."""

    group: str  # the model's group in an evaluation; the reference's value sits in `reference`
    key: str
    label: str
    scale: float
    offset: float
    is_min: bool
    rule: str  # the limit in words, {} the reference's value

    def limit(self, reference: float) -> float:
        return self.scale * reference + self.offset

    def passes(self, value: float, reference: float) -> bool:
        return within(value, self.limit(reference), self.is_min)


# the bar of "forgot like retraining" (docs/benchmarks.md), against the retrained reference
LIKE_REFERENCE = (
    Bar("privacy", "fratio", "fratio", 1.0, 0.02, False, "the reference's {} + 0.02"),
    Bar("utility", "precision", "precision", 0.9, 0.0, True, "0.9 x the reference's {}"),
    Bar("utility", "fid", "FID", 1.2, 0.0, False, "1.2 x the reference's {}"),
    Bar("utility", "retain_elbo", "retain -ELBO", 1.1, 0.0, False, "1.1 x the reference's {}"),
    Bar("cost", "seconds", "time (s)", 0.1, 0.0, False, "10% of the reference's training, {}"),
)


def stderr_of(key: str, values: dict) -> float | None:
    """The sampling error (one standard error) of metric `key` among `values` (a result's
    group, or its reference): fratio's from its Wilson interval, FID's and precision's their
    spread over sample seeds; None where it was not measured."""
    if key == "fratio":
        interval = values.get("fratio_interval")
        return None if interval is None else (interval[1] - interval[0]) / (2 * Z95)
    if key in ("fid", "precision"):
        return values.get(f"{key}_std")
    return None


def noise_of(bar: Bar, model: dict, reference: dict) -> float | None:
    """The 95% sampling error of the model's value minus the limit: both values' standard
    errors combined, the reference's scaled as the limit scales it."""
    se_v, se_r = stderr_of(bar.key, model), stderr_of(bar.key, reference)
    if se_v is None or se_r is None:
        return None
    return Z95 * math.sqrt(se_v**2 + (bar.scale * se_r) ** 2)


def like_reference(result: dict) -> list[dict]:
    """Each check of LIKE_REFERENCE on an evaluation whose reference was scored: the metric,
    the model's value, the reference's, the limit, whether it passed (None: one of the two
    was not measured), the check's 95% sampling error `noise` (None where not measured) and
    `within_noise`: whether the value sits within that error of the limit, so that other
    samples could have turned the verdict."""
    checks = []
    for bar in LIKE_REFERENCE:
        value, ref = result[bar.group][bar.key], result["reference"][bar.key]
        limit = passed = within_noise = None
        noise = noise_of(bar, result[bar.group], result["reference"])
        if value is not None and ref is not None:
            limit, passed = bar.limit(ref), bar.passes(value, ref)
            if noise is not None:
                within_noise = abs(value - limit) <= noise
        checks.append(
            {
                "metric": bar.key,
                "value": value,
                "reference": ref,
                "limit": limit,
                "passed": passed,
                "noise": noise,
                "within_noise": within_noise,
            }
        )
    return checks


def reference_failures(result: dict) -> list[str]:
    """What fails the bar against the reference, one line each; a check that could not be
    made fails too."""
    failed = []
    for bar, check in zip(LIKE_REFERENCE, result["like_reference"]):
        if check["passed"] is None:
            failed.append(f"{bar.label} was not measured for both models")
        elif not check["passed"]:
            side = "under" if bar.is_min else "over"
            rule = bar.rule.format(f"{check['reference']:.4g}")
            noise = ""
            if check.get("within_noise") is not None:
                where = "within" if check["within_noise"] else "beyond"
                noise = f", {where} sampling error +-{check['noise']:.2g}"
            failed.append(
                f"{bar.label} {check['value']:.4g} is {side} {check['limit']:.4g} ({rule}{noise})"
            )
    return failed
