#!/usr/bin/env bash
# Run benchmark shards side by side on the GPU machine, each cut off after a time limit, and pack what
# they wrote (and their logs) into ONE archive: a device call returns at most 8 files.
#
#   CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src bash benchmarks/gpu_shards.sh LIMIT_S SHARDS_FILE
#
# SHARDS_FILE: one shard a line, "GPU NAME COMMAND...", where COMMAND may use $R (the results folder,
# $OUT/r) and runs from the repository root; '#' lines are skipped. Writes $OUT/results.tgz.
set -u
limit=$1
shards=$2
R="${OUT:?set OUT}/r"
mkdir -p "$R"
export R TORCHINDUCTOR_COMPILE_THREADS="${TORCHINDUCTOR_COMPILE_THREADS:-2}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$R/card.txt" 2>&1
python -c "import torch, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda)" >>"$R/card.txt" 2>&1
# NOTE: a shard list written for two GPUs may land on a one-GPU machine (the x2 kind is not always
# lent): a GPU index the machine lacks wraps around, and the shard's log says so
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU" || true)
pids=()
while read -r gpu name cmd; do
    [[ -z "${gpu}" || "${gpu}" == \#* ]] && continue
    : >"$R/${name}.log"
    if [[ "${ngpu}" -gt 0 && "${gpu}" -ge "${ngpu}" ]]; then
        echo "shard ${name}: GPU ${gpu} is not on this machine (${ngpu} GPU(s)); running on GPU $((gpu % ngpu))" >>"$R/${name}.log"
        gpu=$((gpu % ngpu))
    fi
    (CUDA_VISIBLE_DEVICES=$gpu timeout -k 10 "$limit" bash -c "$cmd" >>"$R/$name.log" 2>&1; echo "rc $?" >>"$R/$name.log") &
    pids+=($!)
done <"$shards"
wait "${pids[@]}"
tar czf "$OUT/results.tgz" -C "$OUT" r
ls -la "$R" | tail -n +2
