"""``dpa2 eval`` and ``dpa2 test``: deepmd-kit's numbers, on both backends, from any file.

One periodic 48-atom water cell (16 O, 32 H of a DFT frame) serves every test, so the
jax backend compiles once for the whole module.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import MODEL_DP, water_frames

import dpa2_core as dc
from dpa2_cli.main import main

H = 1e-4  # central-difference step, Å
ATOM, AXIS = 5, 1  # the displaced coordinate


def _system(root, coord, atype, box, energy=None, force=None):
    """A deepmd-format system of float64 frames (npy keeps every digit)."""
    (root / "set.000").mkdir(parents=True)
    (root / "type_map.raw").write_text("O H\n")
    np.savetxt(root / "type.raw", atype, fmt="%d")
    nf = coord.shape[0]
    np.save(root / "set.000" / "coord.npy", coord.reshape(nf, -1))
    np.save(root / "set.000" / "box.npy", box.reshape(nf, 9))
    if energy is not None:
        np.save(root / "set.000" / "energy.npy", energy)
        np.save(root / "set.000" / "force.npy", force.reshape(nf, -1))
    return root


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """(root, coord (48, 3), atype (48,), box (3, 3)): frames base, +H, -H of one coordinate
    in ``root/fd``; ``root/data/sub/{a,b}``: one labelled frame each."""
    root = tmp_path_factory.mktemp("cell")
    coord, atype, box = (x[0] for x in water_frames(0, (0,)))
    keep = np.r_[0:16, 64:96]
    coord, atype = coord[keep], atype[keep]
    step = np.zeros_like(coord)
    step[ATOM, AXIS] = H
    frames = np.stack([coord, coord + step, coord - step])
    _system(root / "fd", frames, atype, np.stack([box] * 3))
    rng = np.random.default_rng(0)
    for k, name in enumerate("ab"):
        _system(root / "data" / "sub" / name, (coord + 0.01 * k)[None], atype, box[None],
                np.array([-7480.0 + k]), rng.normal(size=(1, 48, 3)))
    return root, coord, atype, box


@pytest.fixture(scope="module")
def dp_model():
    import deepmd.dpmodel.model  # noqa: F401  (registers the model classes)
    from deepmd.dpmodel.model.base_model import BaseModel

    return BaseModel.deserialize(dc.io.deepmd_files.read_deepmd_file(MODEL_DP)["model"])


def _eval(structure, out, *extra) -> None:
    assert main(["eval", str(structure), "--model", str(MODEL_DP), "-q", "-o", str(out),
                 *extra]) == 0


def test_eval_gives_deepmd_energies_and_gradient_forces_on_both_backends(cell, dp_model,
                                                                         tmp_path, capsys):
    """Energies and per-atom energies equal deepmd-kit's; jax forces are central
    differences of its energies; torch and jax agree on forces, virials and stresses; the
    stress is -virial/volume; extxyz and npz hold the same numbers."""
    ase_io = pytest.importorskip("ase.io")
    root, coord, atype, box = cell
    _eval(root / "fd", tmp_path / "t.npz", "--frames", "0")
    _eval(root / "fd", tmp_path / "j.npz", "--backend", "jax")
    _eval(root / "fd", tmp_path / "t.extxyz", "--frames", "0")
    text = capsys.readouterr().out
    assert "max |F|" in text and "stress written to" in text
    t, j = np.load(tmp_path / "t.npz"), np.load(tmp_path / "j.npz")
    ref = dp_model.call(coord.reshape(1, -1), atype[None], box.reshape(1, 9))
    np.testing.assert_allclose(t["energy"], ref["energy"][:, 0], rtol=1e-12)
    np.testing.assert_allclose(t["atom_energy"], ref["atom_energy"][..., 0], rtol=0, atol=1e-10)
    for key in ("energy", "atom_energy", "force", "virial", "stress"):
        np.testing.assert_allclose(j[key][:1], t[key], rtol=0, atol=1e-9, err_msg=key)
    fd = -(j["energy"][1] - j["energy"][2]) / (2 * H)
    assert abs(fd - j["force"][0, ATOM, AXIS]) < 1e-6
    np.testing.assert_allclose(t["stress"][0], -t["virial"][0] / abs(np.linalg.det(box)),
                               rtol=1e-14)
    back = ase_io.read(tmp_path / "t.extxyz", ":")
    assert len(back) == 1
    assert back[0].get_potential_energy() == pytest.approx(t["energy"][0], rel=1e-12)
    np.testing.assert_allclose(back[0].get_forces(), t["force"][0], atol=1e-7)
    np.testing.assert_allclose(back[0].get_stress(voigt=False), t["stress"][0], atol=1e-9)
    np.testing.assert_allclose(back[0].get_potential_energies(), t["atom_energy"][0],
                               atol=1e-7)


def test_test_command_on_a_folder_of_systems_both_backends(cell, tmp_path, capsys):
    """A folder holding systems (as dpa2 train takes it), both backends, deepmd's -d files:
    the detail files hold the labels and the predictions the summary's errors come from."""
    root = cell[0]
    results = {}
    for backend in ("torch", "jax"):
        prefix = tmp_path / backend
        assert main(["test", "--model", str(MODEL_DP), "--system", str(root / "data"),
                     "--backend", backend, "-q", "-d", str(prefix)]) == 0
        text = capsys.readouterr().out
        assert text.count("# system:") == 2 and "weighted average over 2 systems" in text
        results[backend] = (np.loadtxt(f"{prefix}.e.out"), np.loadtxt(f"{prefix}.f.out"), text)
    (e_t, f_t, text), (e_j, f_j, _) = results["torch"], results["jax"]
    assert e_t.shape == (2, 2) and f_t.shape == (2 * 48, 6)
    np.testing.assert_allclose(e_j, e_t, rtol=0, atol=1e-8)
    np.testing.assert_allclose(f_j, f_t, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(e_t[:, 0], [-7480.0, -7479.0])  # labels, systems sorted
    first, second = text.split("# system:")[1:3]
    rmse_f = np.sqrt(np.mean((f_t[48:, 3:] - f_t[48:, :3]) ** 2))
    assert float(second.split("Force  RMSE        :")[1].split()[0]) == pytest.approx(
        rmse_f, rel=1e-6)
    rmse_e = abs(e_t[0, 1] - e_t[0, 0]) / 48
    assert float(first.split("Energy RMSE/Natoms :")[1].split()[0]) == pytest.approx(
        rmse_e, rel=1e-6)
    np.testing.assert_allclose(np.loadtxt(f"{tmp_path / 'torch'}.e_peratom.out"), e_t / 48)


@pytest.fixture(scope="module")
def dp_reference(cell, dp_model):
    """deepmd-kit's energies and per-atom energies of the two frames of ``root/data``."""
    _, coord, atype, box = cell
    return [dp_model.call((coord + 0.01 * k).reshape(1, -1), atype[None], box.reshape(1, 9))
            for k in range(2)]


def _deepmd(path):
    import deepmd.dpmodel.model  # noqa: F401  (registers the model classes)
    from deepmd.dpmodel.model.base_model import BaseModel

    return BaseModel.deserialize(dc.io.deepmd_files.read_deepmd_file(path)["model"])


def test_eval_and_test_on_train_checkpoints_give_deepmd_energies(cell, tmp_path):
    """A checkpoint of dpa2 train (torch .pt, jax .npz) as --model of eval and test, on
    its own backend: the energies deepmd-kit gives on the .dp that dpa2 freeze makes."""
    from cli_inputs import train_checkpoints

    root, coord, atype, box = cell
    for ckpt, backend in zip(train_checkpoints(tmp_path), ("torch", "jax"), strict=True):
        frozen = tmp_path / f"{backend}.dp"
        assert main(["freeze", str(ckpt), "-o", str(frozen)]) == 0
        oracle = _deepmd(frozen)
        ref = [oracle.call((coord + 0.01 * k).reshape(1, -1), atype[None], box.reshape(1, 9))
               for k in range(2)]
        out = tmp_path / f"{backend}.npz"
        assert main(["eval", str(root / "fd"), "--model", str(ckpt), "--backend", backend,
                     "--frames", "0", "-q", "-o", str(out)]) == 0
        got = np.load(out)
        np.testing.assert_allclose(got["energy"], ref[0]["energy"][:, 0], rtol=1e-12,
                                   err_msg=backend)
        np.testing.assert_allclose(got["atom_energy"], ref[0]["atom_energy"][..., 0], rtol=0,
                                   atol=1e-10, err_msg=backend)
        prefix = tmp_path / f"{backend}_detail"
        assert main(["test", "--model", str(ckpt), "--system", str(root / "data"),
                     "--backend", backend, "-q", "-d", str(prefix)]) == 0
        pred = np.loadtxt(f"{prefix}.e.out")[:, 1]
        np.testing.assert_allclose(pred, [r["energy"][0, 0] for r in ref], rtol=1e-12,
                                   err_msg=backend)


@pytest.fixture(scope="module")
def jaxexport(tmp_path_factory):
    """The shared .dp frozen to a float64 .jaxexport by dpa2 freeze."""
    out = tmp_path_factory.mktemp("artifact") / "water.jaxexport"
    assert main(["freeze", str(MODEL_DP), "-o", str(out)]) == 0
    return out


def test_eval_and_test_run_an_exported_artifact(cell, jaxexport, dp_reference, tmp_path,
                                                capsys):
    """An artifact of dpa2 freeze as --model: eval and test give the numbers of the .dp it
    came from (and deepmd-kit's energies); a --backend of the other framework is one line."""
    root = cell[0]
    _eval(root / "fd", tmp_path / "src.npz", "--backend", "jax")
    assert main(["eval", str(root / "fd"), "--model", str(jaxexport),  # no --backend
                 "-q", "-o", str(tmp_path / "art.npz")]) == 0
    assert "(jax, cpu)" in capsys.readouterr().out
    src, art = np.load(tmp_path / "src.npz"), np.load(tmp_path / "art.npz")
    for key in ("energy", "atom_energy", "force", "virial", "stress"):
        np.testing.assert_allclose(art[key], src[key], rtol=0, atol=1e-10, err_msg=key)
    np.testing.assert_allclose(art["energy"][0], dp_reference[0]["energy"][0, 0], rtol=1e-12)
    details = {}
    for tag, model in (("src", MODEL_DP), ("art", jaxexport)):
        assert main(["test", "--model", str(model), "--system", str(root / "data"),
                     "--backend", "jax", "-q", "-d", str(tmp_path / tag)]) == 0
        details[tag] = [np.loadtxt(f"{tmp_path / tag}.{s}.out") for s in ("e", "f")]
    for a, b in zip(details["art"], details["src"], strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    np.testing.assert_allclose(details["art"][0][:, 1],
                               [r["energy"][0, 0] for r in dp_reference], rtol=1e-12)
    capsys.readouterr()
    assert main(["eval", str(root / "fd"), "--model", str(jaxexport), "--backend", "torch",
                 "-q", "-o", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--backend torch" in err and "--backend jax" in err
    assert not (tmp_path / "x.npz").exists()
    from dpa2_cli.models import open_model

    # no --backend: the artifact's own framework (torch for every other model file)
    assert open_model(jaxexport).backend == "jax" and open_model(MODEL_DP).backend == "torch"


def test_eval_and_test_show_a_progress_bar_with_its_total(cell, tmp_path, capsys):
    """Without -q both commands draw a bar over frames on stderr, its total the frame count."""
    root = cell[0]
    assert main(["eval", str(root / "fd"), "--model", str(MODEL_DP), "-o",
                 str(tmp_path / "e.npz")]) == 0
    err = capsys.readouterr().err
    assert "eval" in err and "3/3" in err and "frame" in err
    assert main(["test", "--model", str(MODEL_DP), "--system", str(root / "data")]) == 0
    err = capsys.readouterr().err
    assert "test" in err and "2/2" in err and "frame" in err
