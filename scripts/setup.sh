#!/usr/bin/env bash
# Install dynashape with its CPU backends and test tools on a fresh machine. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# NOTE: torch is asked for by exact minor version before anything else: with no torch installed, a
# bare `torch` requirement (ours is torch>=2.9) resolves to a several-GB CUDA build. 2.13 is the
# CPU wheel these machines carry; a machine that already has torch (the GPU machine's 2.11) keeps it.
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install --quiet "torch==2.13.*"
fi
"$PY" -m pip install --quiet -e ".[all,test]"
"$PY" -c "import dynashape, torch, onnxruntime; print(f'dynashape {dynashape.__version__} ready: torch {torch.__version__}, onnxruntime {onnxruntime.__version__}')"
