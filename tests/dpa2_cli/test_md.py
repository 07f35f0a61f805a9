"""``dpa2 md``: trajectory, log and plot of a short run; the bundled defaults; clear errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ase")
pytest.importorskip("torch")

from md_helpers import MODEL_DP, small_triclinic  # noqa: E402

from dpa2_cli.main import main  # noqa: E402


def test_nve_run_writes_trajectory_log_and_plot(tmp_path, capsys):
    import ase.io
    from ase.io.trajectory import Trajectory

    structure = tmp_path / "box.extxyz"
    ase.io.write(structure, small_triclinic())
    out = tmp_path / "run.traj"
    assert main(["md", str(structure), "--model", str(MODEL_DP), "--steps", "3",
                 "--timestep", "0.25", "--temperature", "200", "--ensemble", "nve",
                 "-o", str(out), "-q"]) == 0
    assert "NVE 3 x 0.25 fs" in capsys.readouterr().out
    frames = Trajectory(str(out))
    assert len(frames) == 4 and len(frames[0]) == 12
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert lines[0].split()[1:] == ["step", "time[fs]", "T[K]", "Epot[eV]", "Ekin[eV]",
                                    "Etot[eV]"]
    table = np.loadtxt(tmp_path / "run.log")
    assert table.shape == (4, 6)
    np.testing.assert_allclose(table[:, 1], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(table[:, 5], table[:, 3] + table[:, 4], atol=2e-6)
    assert frames[-1].get_potential_energy() == pytest.approx(table[-1, 3], abs=1e-6)
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"


def test_defaults_run_the_bundled_water(tmp_path, capsys):
    # zero steps: one evaluation of the 192-atom frame is enough to check the defaults
    assert main(["md", "--steps", "0", "-o", str(tmp_path / "md.traj"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "bundled water frame (192 atoms)" in out and "NVT" in out
    assert np.loadtxt(tmp_path / "md.log", ndmin=2).shape == (1, 6)


def test_errors_are_one_line(tmp_path, capsys):
    from ase import Atoms

    structure = tmp_path / "nacl.xyz"
    Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]]).write(structure)
    assert main(["md", str(structure), "--model", str(MODEL_DP), "-q",
                 "-o", str(tmp_path / "x.traj")]) == 2
    err = capsys.readouterr().err
    assert "nacl.xyz, frame 0: elements ['Cl', 'Na'] are not in the model's type_map" in err
    assert "has type_map=['O', 'H']" in err
    assert main(["md", str(tmp_path / "missing.xyz"), "-q"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_nvt_steps_behind_a_progress_bar(tmp_path, capsys):
    """Langevin really steps (the temperature moves, the total energy is not conserved)
    and the bar reports every step on stderr."""
    import ase.io

    structure = tmp_path / "box.extxyz"
    ase.io.write(structure, small_triclinic())
    assert main(["md", str(structure), "--model", str(MODEL_DP), "--steps", "2",
                 "--ensemble", "nvt", "--friction", "0.5", "-o", str(tmp_path / "nvt.traj")]) == 0
    captured = capsys.readouterr()
    assert "NVT 2 x 0.5 fs" in captured.out
    assert "2/2" in captured.err
    table = np.loadtxt(tmp_path / "nvt.log")
    assert table.shape == (3, 6)
    assert len(set(table[:, 2])) == 3  # T differs at every step
