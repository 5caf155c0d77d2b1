"""Every seed's figures of chosen rows of `unlearn compare --json` reports, one Markdown row each.

    python benchmarks/seed_table.py runs/reports/mnist138-forget*.json --rows redirect uno RETRAIN

The bar's table (`bar_table.py`) gives each cell's mean and spread over the seeds; a goal set on
every seed (the cost goal of docs/benchmarks.md, "Cost that does not grow with the forget set")
needs each seed's value. The cells: fratio, FID, retain -ELBO, the method's seconds and its
percentage of that seed's RETRAIN.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CELLS = (
    ("privacy.fratio", 3),
    ("utility.fid", 2),
    ("utility.retain_elbo", 1),
    ("cost.seconds", 2),
    ("cost.percent_of_retrain", 2),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--rows", nargs="+", help="row labels (default: every row)")
    args = parser.parse_args(argv)
    print("| target | method | fratio | FID | retain -ELBO | seconds | % of RETRAIN |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for path in args.reports:
        report = json.loads(path.read_text())
        for row in report["rows"]:
            if args.rows and row["label"] not in args.rows:
                continue
            cells = [
                ", ".join(f"{v:.{digits}f}" for v in row["cells"][name]["values"])
                if row["cells"].get(name)
                else "-"
                for name, digits in CELLS
            ]
            print(f"| {report['target']} | {row['title']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
