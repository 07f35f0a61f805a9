"""The one implementation of the trainers' validation mean and ``dpa2 test``'s errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dpa2_core.training.metrics import WeightedMean, energy_force_errors, weighted_errors


def test_weighted_mean_weights_batches_by_atoms():
    mean = WeightedMean()
    mean.add({"rmse": 1.0, "rmse_f": 4.0}, 2 * 3)  # 2 frames of 3 atoms
    mean.add({"rmse": 4.0, "rmse_f": 1.0}, 1 * 12)  # 1 frame of 12 atoms
    assert mean.result() == {"rmse": (6 * 1.0 + 12 * 4.0) / 18, "rmse_f": (6 * 4 + 12) / 18}
    with pytest.raises(ValueError, match="nothing was added"):
        WeightedMean().result()


def test_energy_force_errors_by_hand():
    e, e_ref = np.array([1.0, 2.0]), np.array([0.0, 4.0])  # errors 1, -2
    f = np.zeros((2, 2, 3))
    f_ref = np.zeros((2, 2, 3))
    f_ref[0, 0, 0] = 3.0  # one force error of 3 among 12 components
    got = energy_force_errors(e, e_ref, 2, f, f_ref)
    assert got["nframes"] == 2 and got["natoms"] == 2
    assert got["rmse_e"] == math.sqrt((1 + 4) / 2) and got["mae_e"] == 1.5
    assert got["rmse_ea"] == got["rmse_e"] / 2 and got["mae_ea"] == 0.75
    assert got["rmse_f"] == math.sqrt(9 / 12) and got["mae_f"] == 3 / 12
    assert math.isnan(energy_force_errors(e, e_ref, 2)["rmse_f"])


def test_weighted_errors_weight_frames_and_atoms():
    a = {"nframes": 1, "natoms": 3, "mae_e": 1.0, "rmse_e": 1.0, "mae_ea": 1.0,
         "rmse_ea": 1.0, "mae_f": 1.0, "rmse_f": 1.0}
    b = {"nframes": 3, "natoms": 1, "mae_e": 3.0, "rmse_e": 3.0, "mae_ea": 3.0,
         "rmse_ea": 3.0, "mae_f": 2.0, "rmse_f": 2.0}
    got = weighted_errors([a, b])
    assert got["rmse_ea"] == math.sqrt((1 * 1 + 3 * 9) / 4)
    assert got["rmse_f"] == math.sqrt((3 * 1 + 3 * 4) / 6)
    assert got["mae_f"] == (3 * 1 + 3 * 2) / 6
