#!/usr/bin/env bash
# The same model with and without our guardrail system prompt, paired on the same items:
# what the prompt costs in over-refusal and what it buys in harmful refusal.
#
#   OPENAI_API_KEY=... ./examples/guardrail-prompt.sh
#
# SUITE and OUT can be overridden (the test suite points the run at a loopback server).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${SUITE:-standard}
OUT=${OUT:-guardrail}
mkdir -p "$OUT"

# What would it cost? Nothing is sent; the dry run also says the smallest tax the run can detect.
taxcheck run -m guarded -b plain --config "$HERE/guardrail-prompt.toml" -s "$SUITE" --dry-run

status=0
taxcheck run -m guarded -b plain --config "$HERE/guardrail-prompt.toml" -s "$SUITE" \
  -o "$OUT/run.jsonl" -f markdown > "$OUT/tax.md" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
  echo "taxcheck run failed with exit code $status" >&2
  exit "$status"
fi
taxcheck report "$OUT/run.jsonl" -f html -o "$OUT/report.html"
echo "table: $OUT/tax.md   report: $OUT/report.html" >&2
