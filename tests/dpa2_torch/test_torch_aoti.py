"""The .pt2 (AOTInductor) artifact end to end: loaded without dpa2 on three systems, and
run by the calculator. One AOTInductor compile of the tiny model (float64) costs about
two minutes of C++ compile on the 2-core CI host, so this is the suite's one .pt2; the
float32 trace is the .pte's (tests/dpa2_torch/test_torch_export.py)."""

from __future__ import annotations

import time

from export_helpers import check_calculator_on_artifact, lower_inputs, run_host, structures
from test_torch_export import TORCH_HOST, check, eager, energy_model

from dpa2_torch import Calculator, export_model, load_exported


def test_pt2_loads_without_dpa2_and_matches_eager(tmp_path):
    path = str(tmp_path / "tiny_float64.pt2")
    start = time.perf_counter()
    meta = export_model(energy_model(), path, dtype="float64")
    print(f"AOTInductor export: {time.perf_counter() - start:.0f} s")
    systems = structures()
    inputs = lower_inputs(energy_model().config, systems)
    results = run_host(tmp_path, TORCH_HOST, inputs, {"pt2": path})
    check(results, "pt2", eager(energy_model(), systems, "float64"), inputs, 1e-10)
    assert results["pt2/metadata"] == {k: v for k, v in meta.items() if k != "export_seconds"}
    assert load_exported(path).metadata["kind"] == "torch-aoti-pt2"
    check_calculator_on_artifact(Calculator, path, "float64", 1e-10)  # the calculator hook
