"""The bar of "Forgetting like retraining" (the one `unlearn evaluate --like-reference` checks),
on `unlearn compare --json` reports.

    python benchmarks/bar_table.py runs/reports/*.json > bar.md

For every report (one target) and every unlearning row, each seed's numbers are held against
the RETRAIN row of the same seed:
  fratio <= retrain's + 0.02; precision >= 0.9 x retrain's; FID <= 1.2 x retrain's;
  retain -ELBO <= 1.1 x retrain's; time <= 10% of retraining's.
A cell shows the mean (and, over several seeds, the standard deviation) and passes (no mark)
only when every seed passes; a miss is marked with a cross. Over several seeds, a cell also
marked ≈ is within retraining's floor: no further from the same seed's RETRAIN, on average,
than two RETRAIN seeds are from each other (`compare`'s floor row), whichever side it is on.
Prints one Markdown table.
"""

from __future__ import annotations

import json
import sys

from unlearn_cli.api import LIKE_REFERENCE, mark_floor

BAR = {bar.key: bar for bar in LIKE_REFERENCE}  # the bar of `unlearn evaluate --like-reference`

# column: (metric key, how a seed's value v passes against retrain's r)
CHECKS = {
    "fratio": ("privacy.fratio", BAR["fratio"].passes),
    "precision": ("utility.precision", BAR["precision"].passes),
    "pixel precision": ("utility.pixel_precision", None),  # reported, no bar
    "FID": ("utility.fid", BAR["fid"].passes),
    "FID vs RETRAIN": ("utility.fid_reference", None),  # reported, no bar
    "retain -ELBO": ("utility.retain_elbo", BAR["retain_elbo"].passes),
    # a report's time is already a percentage of retraining's, whose own is 100
    "time % retrain": ("cost.percent_of_retrain", lambda v, r: BAR["seconds"].passes(v, 100.0)),
}


def cell(row: dict, retrain: dict, key: str, check) -> str:
    values = row["cells"][key]["values"] if row["cells"].get(key) else []
    if not values:
        return "-"
    mean = sum(values) / len(values)
    digits = 3 if abs(mean) < 10 else 1
    text = f"{mean:.{digits}f}"
    if len(values) > 1:  # sample standard deviation over seeds
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        text += f" ({std:.{digits}f})"
    floor = " ≈" if row["cells"][key].get("within_floor") else ""
    if check is None:
        return text + floor
    refs = retrain["cells"][key]["values"] if retrain["cells"].get(key) else [0.0] * len(values)
    ok = all(check(v, r) for v, r in zip(values, refs))
    return (text if ok else f"{text} ✗") + floor


def main(paths: list[str]) -> None:
    print("| target | method | " + " | ".join(CHECKS) + " |")
    print("|---|---|" + "---|" * len(CHECKS))
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        mark_floor(report["rows"])
        rows = {r["label"]: r for r in report["rows"]}
        retrain = rows["RETRAIN"]
        target = f"{report['dataset'].split(' (')[0]}, forget {report['target']}"
        for label, row in rows.items():
            if label == "BEFORE":
                continue
            cells = []
            for key, check in CHECKS.values():
                cells.append(cell(row, retrain, key, None if label == "RETRAIN" else check))
            print(f"| {target} | {row['title']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
