#!/usr/bin/env bash
# Where the `aoti_torch_copy_` that breaks CUDA graph capture of imported text models comes from: build
# BERT from its TorchScript file in fp16 on CUDA through dynashape (the gauntlet's pipeline), with Inductor's
# cache in $OUT, then print the generated wrapper code around each aoti_torch_copy_ call.
#   CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src bash benchmarks/probe_copy_sites_gpu.sh
set -u
export TORCHINDUCTOR_CACHE_DIR="${OUT:?set OUT}/cache"
python - <<'PY'
import sys, tempfile
sys.path.insert(0, "tests/gauntlet")
import pipeline
from models import BY_NAME
case = BY_NAME["bert"]
model = case.make()
path = pipeline.export(case, model, "torchscript", tempfile.mkdtemp())
engine = pipeline.build(case, path, "inductor", device="cuda", precision="fp16")
print("built", flush=True)
PY
grep -rn -B 30 -A 2 "aoti_torch_copy_" --include="*.cpp" "$TORCHINDUCTOR_CACHE_DIR" | grep -v "^--$" | cut -c1-260 | head -150 > "$OUT/copy_sites.txt"
grep -c "" "$OUT/copy_sites.txt"
rm -rf "$TORCHINDUCTOR_CACHE_DIR"
