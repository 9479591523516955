#!/usr/bin/env bash
# Vendor vetting: which of three APIs refuses our legitimate questions least, without
# answering the dangerous ones? One baseline, three candidates, one HTML report to forward.
#
#   OPENAI_API_KEY=... ANTHROPIC_API_KEY=... TOGETHER_API_KEY=... ./examples/vendor-vetting.sh
#
# Override any model or the suite with the variables below (the test suite points them at a
# loopback server).
set -euo pipefail

BASELINE=${BASELINE:-openai:gpt-5.4}
VENDOR_A=${VENDOR_A:-openai:gpt-5.4-mini}
VENDOR_B=${VENDOR_B:-anthropic:claude-haiku-4-5}
VENDOR_C=${VENDOR_C:-together:meta-llama/Llama-3.3-70B-Instruct-Turbo}
TOGETHER_URL=${TOGETHER_URL:-https://api.together.xyz/v1}
SUITE=${SUITE:-standard}
OUT=${OUT:-vendor-vetting}

mkdir -p "$OUT"
# 1. What will it cost? Nothing is sent.
taxcheck run -b "$BASELINE" -m "$VENDOR_A" -m "$VENDOR_B" -m "$VENDOR_C" \
  --endpoint together="$TOGETHER_URL" -s "$SUITE" --dry-run

# 2. The run. Exit code 3 means some items failed after retries: the report still counts them.
status=0
taxcheck run -b "$BASELINE" -m "$VENDOR_A" -m "$VENDOR_B" -m "$VENDOR_C" \
  --endpoint together="$TOGETHER_URL" -s "$SUITE" \
  -o "$OUT/run.jsonl" -f markdown > "$OUT/tax.md" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
  echo "taxcheck run failed with exit code $status" >&2
  exit "$status"
fi

# 3. The report: tax table, trade-off plot, worst examples per dimension.
taxcheck report "$OUT/run.jsonl" -f html -o "$OUT/report.html"
echo "table: $OUT/tax.md   report: $OUT/report.html" >&2
