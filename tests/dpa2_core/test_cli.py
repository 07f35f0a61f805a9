"""The ``dpa2`` command: ``describe`` on the bundled default, on files and on models."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from oracle import MODEL_DP, WATER, water_frames

import dpa2_core as dc
import dpa2_core.io.npy_data
from dpa2_cli.main import main


def test_describe_default_writes_all_outputs(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["describe", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "atoms: 192" in text and "neighbors per atom" in text and "time:" in text
    data = np.load(out)
    config = dc.presets.preset("medium")
    assert data["descriptor"].shape == (1, 192, config.dim_out)
    assert data["rot_mat"].shape == (1, 192, 32, 3)
    assert data["g2"].shape == (1, 192, 48, 32) and data["h2"].shape == (1, 192, 48, 3)
    assert data["sw"].shape == (1, 192, 48)
    assert data["coord"].shape == (1, 192, 3) and data["box"].shape == (1, 3, 3)
    assert np.isfinite(data["descriptor"]).all()


def test_describe_matches_library_call(tmp_path):
    """The command's numbers are the library's numbers (same model, same structure)."""
    out = tmp_path / "d.npz"
    assert main(["describe", str(WATER / "data_2"), "--model", str(MODEL_DP), "--frames", "1:3",
                 "-q", "-o", str(out)]) == 0
    data = np.load(out)
    config, params = dc.load_deepmd(MODEL_DP)
    system = dc.io.npy_data.DeepmdSystem(WATER / "data_2", list(config.type_map)).frames()
    for k, frame in enumerate((1, 2)):
        inputs = dc.build_neighbor_list(system.coord[frame], system.atype[frame], config,
                                        system.box[frame])
        ref = dc.descriptor(params, config, *inputs[:2], inputs[3], inputs[2])
        np.testing.assert_allclose(data["descriptor"][k], ref.descriptor[0], rtol=0,
                                   atol=1e-12)


def test_describe_with_config_json(tmp_path):
    cfg = {"model": {"type_map": ["O", "H"], "descriptor": {
        "type": "dpa2",
        "repinit": {"rcut": 5.0, "rcut_smth": 0.5, "nsel": 80, "neuron": [4, 8],
                    "axis_neuron": 2},
        "repformer": {"rcut": 3.5, "rcut_smth": 1.0, "nsel": 30, "nlayers": 1, "g1_dim": 8,
                      "g2_dim": 4, "axis_neuron": 2}}}}
    path = tmp_path / "input.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "d.npz"
    assert main(["describe", "--config", str(path), "-o", str(out)]) == 0
    assert np.load(out)["descriptor"].shape == (1, 192, 8 + 8)


def test_describe_reports_bad_input(tmp_path, capsys):
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"repinit": {}, "repformer": {}}))
    assert main(["describe", "--config", str(path), "-o", str(tmp_path / "x.npz")]) == 2
    assert "error: repinit.rcut" in capsys.readouterr().err


def test_describe_reads_a_slab_file_with_its_pbc(tmp_path):
    """An extxyz slab (pbc T T F) goes through ``describe`` with its periodicity."""
    ase = pytest.importorskip("ase")
    ase_io = pytest.importorskip("ase.io")

    coord, atype, box = (x[0] for x in water_frames(0, (0,)))
    atoms = ase.Atoms(symbols=[("O", "H")[t] for t in atype], positions=coord, cell=box,
                      pbc=[True, True, False])
    path = tmp_path / "slab.extxyz"
    ase_io.write(path, atoms)
    out = tmp_path / "d.npz"
    assert main(["describe", str(path), "--model", str(MODEL_DP), "-q", "-o", str(out)]) == 0
    data = np.load(out)
    assert data["pbc"].tolist() == [[True, True, False]]
    config, params = dc.load_deepmd(MODEL_DP)
    coord_ext, atype_ext, mapping, nlist = dc.from_ase(ase_io.read(path), config)
    ref = dc.descriptor(params, config, coord_ext, atype_ext, nlist, mapping)
    np.testing.assert_allclose(data["descriptor"], ref.descriptor, rtol=0, atol=1e-12)


def test_describe_refuses_frames_it_cannot_honour(tmp_path, capsys):
    out = str(tmp_path / "x.npz")
    assert main(["describe", "--frames", "5:9", "-o", out]) == 2
    assert "--frames='5:9': needs a STRUCTURE" in capsys.readouterr().err
    assert main(["describe", str(WATER / "data_0"), "--frames", "0:0", "-o", out]) == 2
    assert "selects no frame" in capsys.readouterr().err


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "dpa2_cli", "--help"], capture_output=True,
                          text=True, check=True)
    assert "describe" in proc.stdout and "train" in proc.stdout
