"""The .pt2 (AOTInductor) artifact end to end, float64 and float32: loaded without dpa2
on three systems, and run by the calculator. One AOTInductor compile of the tiny model
costs one to two minutes of C++ compile on the 2-core CI host: these are the suite's two
slowest tests."""

from __future__ import annotations

import time

import pytest
from export_helpers import check_calculator_on_artifact, lower_inputs, run_host, structures
from test_torch_export import TOL, TORCH_HOST, check, eager, energy_model

from dpa2_torch import Calculator, export_model, load_exported


@pytest.mark.parametrize("dtype", list(TOL))
def test_pt2_loads_without_dpa2_and_matches_eager(dtype, tmp_path):
    path = str(tmp_path / f"tiny_{dtype}.pt2")
    start = time.perf_counter()
    meta = export_model(energy_model(), path, dtype=dtype)
    print(f"AOTInductor export: {time.perf_counter() - start:.0f} s")
    systems = structures()
    inputs = lower_inputs(energy_model().config, systems)
    results = run_host(tmp_path, TORCH_HOST, inputs, {"pt2": path})
    check(results, "pt2", eager(energy_model(dtype), systems, dtype), inputs, TOL[dtype])
    assert results["pt2/metadata"] == {k: v for k, v in meta.items() if k != "export_seconds"}
    assert load_exported(path).metadata["kind"] == "torch-aoti-pt2"
    check_calculator_on_artifact(Calculator, path, dtype, TOL[dtype])  # the calculator hook
