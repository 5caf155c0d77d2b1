#!/usr/bin/env bash
# bash benchmarks/cost_goal.sh
#
# "Cost that does not grow with the forget set" (docs/benchmarks.md, "The goal, side by side"):
# every target of its goal from the repository root, one after another, each timed: MNIST138
# forgetting 1, 3 and 8 (3 seeds, every method), sample_configs/quick.yaml, and ten-digit MNIST
# forgetting each digit (benchmarks/mnist10-cost.yaml). From nothing cached it measures the
# whole benchmark's time (47 minutes on a 2-core CPU); one JSON report per target in
# runs/reports/ and quick's table in runs/reports/quick.txt, then the seed-by-seed tables.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=runs/reports
mkdir -p "$out"
start=$SECONDS
for digit in 1 3 8; do
  began=$SECONDS
  unlearn compare benchmarks/mnist138.yaml --forget "class:$digit" --json \
    > "$out/mnist138-forget$digit.json"
  echo "mnist138 class $digit: $((SECONDS - began)) s" >&2
done
began=$SECONDS
COLUMNS=100 unlearn compare sample_configs/quick.yaml > "$out/quick.txt"
echo "quick: $((SECONDS - began)) s" >&2
for digit in 0 1 2 3 4 5 6 7 8 9; do
  began=$SECONDS
  unlearn compare benchmarks/mnist10-cost.yaml --forget "class:$digit" --json \
    > "$out/mnist10-cost-forget$digit.json"
  echo "mnist10 class $digit: $((SECONDS - began)) s" >&2
done
echo "all: $((SECONDS - start)) s" >&2
python benchmarks/seed_table.py "$out"/mnist138-forget*.json --rows redirect RETRAIN
python benchmarks/seed_table.py "$out"/mnist10-cost-forget*.json --rows redirect RETRAIN
