#!/bin/bash
# tools/bench on the tiny preset: --mode generate (greedy and beam search) prints one JSON line with
# new_tokens and a positive tokens_per_sec; --mode train reports --batched_experts; bad flags fail.
set -u
tool="tools/bench"
fail() { echo "FAIL: $*"; exit 1; }
common=(--preset tiny --experts 3 --batch 2 --src_len 16 --steps 1 --warmup 0 --threads 1)
# The value of "key" in a one-line JSON object (numbers, booleans and strings without commas).
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$2"; }

for beams in 1 3; do
  out=$("$tool" "${common[@]}" --mode generate --new_tokens 8 --num_beams "$beams") ||
    fail "generate with $beams beams failed: $out"
  echo "$out"
  [[ $(wc -l <<<"$out") == 1 ]] || fail "not one line: $out"
  [[ $(field impl "$out") == taskmoe-generate ]] || fail "impl: $out"
  [[ $(field new_tokens "$out") == 8 ]] || fail "new_tokens: $out"
  [[ $(field num_beams "$out") == "$beams" ]] || fail "num_beams: $out"
  awk -v v="$(field tokens_per_sec "$out")" 'BEGIN { exit !(v + 0 > 0) }' ||
    fail "tokens_per_sec not positive: $out"
done

out=$("$tool" "${common[@]}" --mode train --tgt_len 8 --batched_experts=false) || fail "train: $out"
echo "$out"
[[ $(field batched_experts "$out") == false ]] || fail "batched_experts: $out"
[[ $(field mode "$out") == train ]] || fail "mode: $out"

if err=$("$tool" "${common[@]}" --mode generate --num_beams 0 2>&1); then
  fail "--num_beams 0 was accepted"
fi
grep -qF -- "--num_beams must be at least 1" <<<"$err" || fail "no --num_beams error: $err"
if err=$("$tool" "${common[@]}" --mode decode 2>&1); then fail "--mode decode was accepted"; fi
grep -qF -- "--mode must be train, forward or generate" <<<"$err" || fail "no --mode error: $err"
echo PASS
