#!/usr/bin/env bash
# bash benchmarks/every_target.sh
#
# "Forgetting like retraining" (docs/benchmarks.md): every target of the bar, from the
# repository root.
# MNIST138 forgetting each of 1, 3 and 8 (3 seeds), ten-digit MNIST forgetting each digit
# (1 seed), and MNIST247 forgetting each of 2, 4 and 7 (1 seed); each `unlearn compare` also
# trains what it needs (originals, judges, retrains) and reuses it across targets.
# One JSON report per target in runs/reports/, then the bar's table.
# About 85 minutes on a 2-core CPU (MNIST247 about 10 of them); rerunning reuses every cached
# run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=runs/reports
mkdir -p "$out"
for digit in 1 3 8; do
  unlearn compare benchmarks/mnist138.yaml --forget "class:$digit" --json \
    > "$out/mnist138-forget$digit.json"
done
for digit in 0 1 2 3 4 5 6 7 8 9; do
  unlearn compare benchmarks/mnist10.yaml --forget "class:$digit" --json \
    > "$out/mnist10-forget$digit.json"
done
for digit in 2 4 7; do
  unlearn compare benchmarks/mnist247.yaml --forget "class:$digit" --json \
    > "$out/mnist247-forget$digit.json"
done
python benchmarks/bar_table.py "$out"/mnist138-forget*.json "$out"/mnist10-forget*.json \
  "$out"/mnist247-forget*.json
