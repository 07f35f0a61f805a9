#!/usr/bin/env bash
# One short GPU check (issue 10, "GPU"): under 5 minutes on one GPU.
#   1. install what the GPU needs (CUDA jax matching the installed jax; CUDA torch 2.13),
#   2. parity on CUDA, float64 and float32: the descriptor of dpa2 torch (cuda) and dpa2 jax
#      (gpu) against deepmd-kit's numpy dpmodel on the same inputs (1e-10 / 1e-5 relative),
#   3. forward+force timings of torch and jax at 192, 1,536 and 12,288 atoms against deepmd
#      pt and deepmd jax (the suite, --device cuda), written to $OUT (default ./gpu_out).
# Run from the repository root:  bash benchmarks/gpu.sh
set -euo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # measure what the model needs, not a 75% pool

step() { echo "== $(date -u +%T) $*"; }

step "install"
python - <<'PY' || pip install -q "torch==2.13.0"
import torch, sys
sys.exit(0 if torch.cuda.is_available() else 1)
PY
JAXV=$(python -c 'import jax; print(jax.__version__)' 2>/dev/null || echo "")
if ! python -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else 1)' 2>/dev/null; then
  pip install -q "jax[cuda12]${JAXV:+==$JAXV}" || pip install -q "jax[cuda13]${JAXV:+==$JAXV}"
fi
pip install -q -e ".[test,torch,jax]" "torch==2.13.0" >/dev/null
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

step "parity on CUDA (float64, float32)"
timeout 120 python - <<'PY' | tee "$OUT/parity.txt"
import numpy as np
from deepmd.dpmodel.descriptor.dpa2 import DescrptDPA2
import dpa2_core as dc
from dpa2_bench.runners import make_runner
from dpa2_bench.structures import config_for, inputs_for, params_for

bad = 0
for dtype, tol in (("float64", 1e-10), ("float32", 1e-5)):
    for name in ("small", "medium"):
        c = config_for(name, dtype)
        p = params_for(c)
        inp = inputs_for(c, 192)
        e = inp.ext
        ref = DescrptDPA2.deserialize(dc.dump_deepmd(c, p)).call(
            inp.coord_ext.astype(dtype).reshape(1, -1), e.atype_ext, e.nlist, e.mapping)[0]
        for backend, opts in (("torch", {"device": "cuda"}), ("jax", {})):
            out = make_runner(backend, "ours", c, p, inp, "forward", **opts).output()
            err = float(np.abs(out - ref).max() / np.abs(ref).max())
            ok = err <= tol
            bad += not ok
            print(f"{dtype} {name} {backend}: max rel diff {err:.1e} "
                  f"{'ok' if ok else 'FAIL'} (tol {tol:.0e})")
raise SystemExit(1 if bad else 0)
PY

step "forward+force timings (torch cuda, jax gpu) vs deepmd pt / jax"
for spec in "192 1536:float64 float32:150" "12288:float32:90"; do
  IFS=: read -r sizes dtypes limit <<<"$spec"
  tag=$(echo "$sizes" | tr ' ' _)
  timeout "$limit" python benchmarks/bench_suite.py --device cuda --backends torch jax \
    --tasks force --sizes $sizes --dtype $dtypes --repeat 5 --no-flops \
    --json "$OUT/gpu_suite_$tag.json" --md "$OUT/gpu_suite_$tag.md" || echo "suite $tag: exit $?"
done
step "done: $OUT"
