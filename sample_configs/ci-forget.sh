#!/usr/bin/env bash
# bash sample_configs/ci-forget.sh MODELS_DIR MANIFESTS_DIR LEDGER
#
# A CI job that honours deletion requests. It applies the newest manifest in MANIFESTS_DIR to
# the newest checkpoint in MODELS_DIR, gates the result with `unlearn evaluate`, appends the
# receipts to LEDGER only when the gates pass, and audits LEDGER. The new checkpoint is named
# after its manifest (requests/batch-0007.yaml -> MODELS_DIR/batch-0007.safetensors), so it is
# the newest checkpoint the next run starts from.
#
# Settings (environment):
#   UNLEARN_GATES    evaluate's gates; default "--max-mia-auc 0.6" (for sample requests; add
#                    UNLEARN_JUDGE and --max-fratio for class requests)
#   UNLEARN_JUDGE    a judge checkpoint for fratio, IS and FID; default none
#   UNLEARN_SAMPLES  images evaluate generates; default 10000
#   UNLEARN_METHOD   the forget method; default: forget's own
#
# Exit codes: 0 done (or nothing to do), 2 bad input, 3 a gate failed (the new checkpoint is
# removed and nothing is recorded), 4 the audit found a mismatch.
set -euo pipefail

models=$(cd "${1:?usage: ci-forget.sh MODELS_DIR MANIFESTS_DIR LEDGER}" && pwd)
manifests=${2:?usage: ci-forget.sh MODELS_DIR MANIFESTS_DIR LEDGER}
ledger=${3:?usage: ci-forget.sh MODELS_DIR MANIFESTS_DIR LEDGER}
read -r -a gates <<< "${UNLEARN_GATES:---max-mia-auc 0.6}"
extra=()
[[ -n "${UNLEARN_JUDGE:-}" ]] && extra+=(--judge "$UNLEARN_JUDGE")
method=()
[[ -n "${UNLEARN_METHOD:-}" ]] && method+=(--method "$UNLEARN_METHOD")

newest() {  # the most recently modified file matching a glob, or nothing
    ls -t "$@" 2>/dev/null | head -n 1 || true
}

model=$(newest "$models"/*.safetensors)
manifest=$(newest "$manifests"/*.yaml)
[[ -n "$model" ]] || { echo "error: no checkpoint in $models" >&2; exit 2; }
[[ -n "$manifest" ]] || { echo "error: no manifest in $manifests" >&2; exit 2; }
out="$models/$(basename "$manifest" .yaml).safetensors"
if [[ "$out" == "$model" ]]; then
    echo "nothing to do: $manifest is already applied ($model)" >&2
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== forget: $manifest -> $model -> $out" >&2
unlearn forget "$model" --manifest "$manifest" "${method[@]}" --out "$out" \
    --ledger "$work/receipts.jsonl" --json > "$work/forget.json"
if [[ ! -s "$work/receipts.jsonl" ]]; then
    echo "nothing to do: every request of $manifest is already forgotten" >&2
    exit 0
fi

echo "== evaluate with gates: ${gates[*]}" >&2
status=0
unlearn evaluate "$out" "${extra[@]}" --samples "${UNLEARN_SAMPLES:-10000}" "${gates[@]}" \
    --json > "$work/evaluate.json" || status=$?
if (( status != 0 )); then
    rm -f "$out"
    echo "evaluate exited $status: $out removed, nothing recorded in $ledger" >&2
    exit "$status"
fi

echo "== receipts -> $ledger" >&2
# The same lock `unlearn forget --ledger` takes, so concurrent jobs never interleave lines.
flock "$ledger.lock" sh -c 'cat "$1" >> "$2"' sh "$work/receipts.jsonl" "$ledger"

echo "== audit" >&2
unlearn audit "$ledger"
