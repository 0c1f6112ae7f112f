#!/bin/bash
# compute_task_embeddings end to end on a two-task CrossFit directory with the "random" method
# (no model needed): file names, id2task.json in sorted task order, the .npy header and size,
# determinism per seed, and clear errors that write nothing.
set -euo pipefail

tool="tools/compute_task_embeddings"
tokenizer_dir="$(dirname "$(find -L . -path '*fixtures/bart_tokenizer/vocab.json' | head -1)")"
work="${TEST_TMPDIR}/embeddings"
mkdir -p "${work}/data/zeta_task" "${work}/data/alpha_task"
printf 'a b c\tyes\nd e\tno\n' > "${work}/data/zeta_task/zeta_task_16_13_train.tsv"
printf 'x y\tz\n' > "${work}/data/alpha_task/alpha_task_16_13_train.tsv"
printf '{"train": ["zeta_task"], "dev": [], "test": ["alpha_task"]}' > "${work}/split.json"
common=(--data_dir="${work}/data" --split="${work}/split.json" --tokenizer_dir="${tokenizer_dir}")

fail() { echo "FAIL: $*" >&2; exit 1; }

"${tool}" "${common[@]}" --method=random --dim=3 --seed=5 --output_dir="${work}/out" \
  --params='[type.googleapis.com/taskmoe.RandomEmbeddingParams] { stddev: 0.5 }'
[[ "$(cat "${work}/out/id2task.json")" == '{"0":"alpha_task","1":"zeta_task"}' ]] ||
  fail "id2task.json: $(cat "${work}/out/id2task.json")"
npy="${work}/out/task_vecs.npy"
# 128 bytes of magic + header, then 2 x 3 float32 values.
[[ "$(stat -c %s "${npy}")" == 152 ]] || fail "task_vecs.npy has $(stat -c %s "${npy}") bytes"
[[ "$(head -c 8 "${npy}" | od -An -tx1 | tr -d ' \n')" == "934e554d50590100" ]] || fail "npy magic"
head -c 128 "${npy}" | grep -q "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" ||
  fail "npy header"

"${tool}" "${common[@]}" --method=random --dim=3 --seed=5 --output_dir="${work}/again" \
  --params='[type.googleapis.com/taskmoe.RandomEmbeddingParams] { stddev: 0.5 }'
cmp "${npy}" "${work}/again/task_vecs.npy" || fail "same seed, different vectors"

# --split_list=train keeps only zeta_task.
"${tool}" "${common[@]}" --method=random --dim=2 --split_list=train --output_dir="${work}/train"
[[ "$(cat "${work}/train/id2task.json")" == '{"0":"zeta_task"}' ]] || fail "split_list=train"

# Errors: unknown method (lists the registered ones), params of another method, a model method
# without a model. Nothing is written.
if "${tool}" "${common[@]}" --method=nope --output_dir="${work}/bad" 2> "${work}/err"; then
  fail "unknown method accepted"
fi
for name in fisher ft_text_emb random text_emb; do  # the built-in methods (users may add more)
  grep -q "registered: .*${name}" "${work}/err" || fail "$(cat "${work}/err")"
done
if "${tool}" "${common[@]}" --method=random --dim=3 --output_dir="${work}/bad" \
  --params='[type.googleapis.com/taskmoe.FisherEmbeddingParams] { steps: 1 }' 2> "${work}/err"; then
  fail "params of another method accepted"
fi
grep -q "taskmoe.RandomEmbeddingParams" "${work}/err" || fail "$(cat "${work}/err")"
if "${tool}" "${common[@]}" --method=text_emb --output_dir="${work}/bad" 2> "${work}/err"; then
  fail "text_emb without a model accepted"
fi
grep -q "needs a model" "${work}/err" || fail "$(cat "${work}/err")"
# Lengths: at least <s> and </s>, at most the model's positions (bart_tiny has 64).
if "${tool}" "${common[@]}" --method=random --max_output_length=0 --output_dir="${work}/bad" \
  2> "${work}/err"; then
  fail "--max_output_length=0 accepted"
fi
grep -q "^compute_task_embeddings: --max_output_length=0: must be at least 2" "${work}/err" ||
  fail "$(cat "${work}/err")"
bart_tiny="$(dirname "$(find -L . -path '*fixtures/bart_tiny/config.json' | head -1)")"
if "${tool}" "${common[@]}" --method=text_emb --model="${bart_tiny}" --max_input_length=100 \
  --output_dir="${work}/bad" 2> "${work}/err"; then
  fail "--max_input_length beyond the model's positions accepted"
fi
grep -q "max_input_length 100 is more than the 64 positions (max_position_embeddings) of the \
model ${bart_tiny}; must be in \[2, 64\]" "${work}/err" || fail "$(cat "${work}/err")"
[[ ! -e "${work}/bad" ]] || fail "a failed run wrote ${work}/bad"
echo PASS
