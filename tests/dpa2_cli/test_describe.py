"""``dpa2 describe`` on the bundled default, on files and on models of every kind."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from oracle import MODEL_DP, WATER, deepmd_call, deepmd_descriptor, deepmd_inputs, water_frames

import dpa2_core as dc
import dpa2_core.io.npy_data
from dpa2_cli.main import main


def test_describe_default_writes_all_outputs(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["describe", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "atoms: 192" in text and "neighbors per atom" in text and "time:" in text
    assert "untrained" in text.splitlines()[0]
    config = dc.presets.preset("medium")
    data = np.load(out)
    assert data["type_map"].tolist() == ["O", "H"]
    nlist, mapping, neighbor = data["nlist"][0], data["mapping"][0], data["neighbor"][0]
    rf_list = data["nlist_repformer"][0]
    assert nlist.shape == (192, config.nsel) and rf_list.shape == data["g2"].shape[1:3]
    np.testing.assert_array_equal(neighbor, np.where(rf_list >= 0, mapping[rf_list], -1))
    np.testing.assert_array_equal(rf_list >= 0, data["sw"][0] > 0)  # slot filled <=> sw > 0
    assert ((neighbor >= -1) & (neighbor < 192)).all()
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
    err = capsys.readouterr().err
    assert "error: --config" in err and str(path) in err and "repinit.rcut" in err


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


def test_every_slot_names_its_neighbor_whatever_the_file_format(tmp_path):
    """The same cell as extxyz and as POSCAR: slots may come in another order (ties), but
    matched through ``neighbor`` and the ghost's coordinates, g2 and h2 are the same."""
    ase_io = pytest.importorskip("ase.io")
    import ase

    coord, atype, box = (x[0] for x in water_frames(0, (0,)))
    atoms = ase.Atoms(symbols=[("O", "H")[t] for t in atype], positions=coord, cell=box,
                      pbc=True)
    data = {}
    for name, fmt in (("w.extxyz", "extxyz"), ("POSCAR", "vasp")):
        ase_io.write(tmp_path / name, atoms, format=fmt)
        out = tmp_path / f"{fmt}.npz"
        assert main(["describe", str(tmp_path / name), "--model", str(MODEL_DP), "-q", "-o",
                     str(out)]) == 0
        data[fmt] = np.load(out)
    a, b = data["extxyz"], data["vasp"]
    for d in (a, b):
        assert d["type_map"].tolist() == ["O", "H"]
    for k in (0, 57, 191):  # a few atoms: sort each one's slots by (neighbor, g2 row)
        keys = []
        for d in (a, b):
            order = np.lexsort((np.round(d["h2"][0, k, :, 0], 6), d["neighbor"][0, k]))
            keys.append((d["neighbor"][0, k][order], d["h2"][0, k][order]))
        np.testing.assert_array_equal(keys[0][0], keys[1][0])
        np.testing.assert_allclose(keys[0][1], keys[1][1], rtol=0, atol=1e-6)


def test_describe_reads_every_model_kind(tmp_path, capsys):
    """--model takes deepmd-kit .dp/.pt, a dpa2 .npz and the checkpoints of dpa2 train."""
    from cli_inputs import train_checkpoints

    torch_ckpt, jax_ckpt = train_checkpoints(tmp_path)
    molecule = tmp_path / "w.xyz"
    molecule.write_text("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n")
    own = tmp_path / "own.npz"
    dc.save(own, *dc.load_deepmd(MODEL_DP))
    ref = None
    for model in (MODEL_DP, MODEL_DP.with_suffix(".ckpt.pt"), own):
        out = tmp_path / "d.npz"
        assert main(["describe", str(molecule), "--model", str(model), "-q", "-o",
                     str(out)]) == 0
        desc = np.load(out)["descriptor"]
        ref = desc if ref is None else ref
        np.testing.assert_allclose(desc, ref, rtol=0, atol=1e-12)
    coord = np.array([[[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]])
    for ckpt in (torch_ckpt, jax_ckpt):
        assert main(["describe", str(molecule), "--model", str(ckpt), "-q", "-o",
                     str(tmp_path / "c.npz")]) == 0
        assert f"model {ckpt}" in capsys.readouterr().out
        # the oracle: deepmd-kit's descriptor of the .dp dpa2 freeze makes of the checkpoint
        frozen = tmp_path / "frozen.dp"
        assert main(["freeze", str(ckpt), "-o", str(frozen)]) == 0
        serialized = dc.io.deepmd_files.read_deepmd_file(frozen)["model"]["descriptor"]
        oracle = deepmd_descriptor(serialized)
        rcut, nsel = oracle.get_rcut(), sum(oracle.get_sel())
        ref = deepmd_call(serialized, *deepmd_inputs(coord, np.array([[0, 1, 1]]), None,
                                                     rcut, nsel))[0]
        np.testing.assert_allclose(np.load(tmp_path / "c.npz")["descriptor"], ref, rtol=0,
                                   atol=1e-12, err_msg=str(ckpt))
