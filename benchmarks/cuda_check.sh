#!/usr/bin/env bash
# bash benchmarks/cuda_check.sh [OUT_DIR]
#
# The CUDA paths on a machine with a GPU, from the repository root (docs/benchmarks.md, "On a GPU"):
#   1. `unlearn train` twice on cuda with one seed: are the weights the same?
#   2. `unlearn evaluate` of that VAE on cpu and on cuda: the same numbers?
#   3. `unlearn forget` (the default method) on cuda, and the same under torchrun (nccl, 1 rank);
#   4. the paper's MNIST cell on cuda with times (benchmarks/cuda-mnist138.yaml);
#   5. training throughput of both preset VAEs on cuda (benchmarks/scaling.py);
#   6. the ten-digit 8 and 9 on seeds 3 and 4 (benchmarks/cuda-mnist10-seeds.yaml).
# UNLEARN is the command that runs the tool (default: unlearn), PYTHON the Python it is installed
# in (default: python3; torchrun and the checks run with it). OUT_DIR is taken from the
# repository root. Prints what it finds; exits non-zero if a command fails. About 8 minutes on
# one H200.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-runs/cuda-check}
read -r -a tool <<< "${UNLEARN:-unlearn}"
python=${PYTHON:-python3}
mkdir -p "$out"
"$python" -c 'import sys, torch
print("Python", sys.version.split()[0], "torch", torch.__version__, torch.cuda.get_device_name(0))'

timed() {  # timed LABEL COMMAND...: run it (stdout discarded), print its wall time
  local TIMEFORMAT="$1: %R s"
  shift
  time "$@" > /dev/null
}

same_weights() {  # same_weights A B: max abs difference over every tensor of two checkpoints
  "$python" - "$1" "$2" <<'PY'
import sys
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert a.keys() == b.keys()
print(max((a[k].double() - b[k].double()).abs().max().item() for k in a))
PY
}

echo "== 1. train twice on cuda, seed 0"
for run in a b; do
  timed "train $run" "${tool[@]}" train --classes 1,3,8 --device cuda --seed 0 \
    --out "$out/vae-$run.safetensors" --force
done
difference=$(same_weights "$out/vae-a.safetensors" "$out/vae-b.safetensors")
echo "max abs weight difference: $difference"

echo "== 2. evaluate on cpu and on cuda"
for device in cpu cuda; do
  "${tool[@]}" evaluate "$out/vae-a.safetensors" --samples 2000 --device "$device" --json \
    > "$out/evaluate-$device.json"
done
"$python" - "$out" <<'PY'
import json, sys
cpu, cuda = (json.load(open(f"{sys.argv[1]}/evaluate-{d}.json")) for d in ("cpu", "cuda"))
def leaves(d, path=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from leaves(v, f"{path}{k}.")
        elif isinstance(v, float):
            yield f"{path}{k}", v
c = dict(leaves(cpu))
for key, value in leaves(cuda):
    if key in c and "seconds" not in key:
        print(f"{key}: cpu {c[key]:.6g} cuda {value:.6g}")
PY

echo "== 3. forget class 1 on cuda, one process and torchrun (nccl)"
timed forget "${tool[@]}" forget "$out/vae-a.safetensors" --class 1 \
  --device cuda --out "$out/forget-one.safetensors" --force
"$python" -m torch.distributed.run --standalone --nproc-per-node 1 -m unlearn_cli forget \
  "$out/vae-a.safetensors" --class 1 --device cuda --out "$out/forget-torchrun.safetensors" \
  --force > /dev/null
difference=$(same_weights "$out/forget-one.safetensors" "$out/forget-torchrun.safetensors")
echo "one process vs torchrun, max abs weight difference: $difference"

echo "== 4. the paper's MNIST cell on cuda"
"${tool[@]}" compare benchmarks/cuda-mnist138.yaml --device cuda --out-dir "$out/compare" \
  --markdown "$out/cuda-mnist138.md"

echo "== 5. training throughput on cuda (synthetic images, one epoch each)"
"$python" benchmarks/scaling.py --device cuda --mnist-images 204800 --celeba-images 20480

echo "== 6. the ten-digit 8 and 9 on seeds 3 and 4, on cuda"
for digit in 8 9; do
  "${tool[@]}" compare benchmarks/cuda-mnist10-seeds.yaml --device cuda --forget "class:$digit" \
    --out-dir "$out/mnist10-seeds" --markdown "$out/cuda-mnist10-seeds-forget$digit.md" --json \
    > "$out/cuda-mnist10-seeds-forget$digit.json"
done
