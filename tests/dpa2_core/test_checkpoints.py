"""The one checkpoint writer of both trainers: atomic files, rotation only after the new file
is complete, full disks, the output-folder guard, lcurve truncation, sampler states, and
the signal/NaN guards."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from dpa2_core.training import checkpoints, faults, guards
from dpa2_core.training.checkpoints import CheckpointError, OutputError


def _write(data: bytes):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    return write


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_save_writes_step_file_latest_pointer_and_rotates(tmp_path):
    for step in (2, 4, 6, 8):
        path = checkpoints.save(tmp_path, "model.ckpt", ".pt", step, _write(b"s%d" % step),
                                keep=2)
        assert path == tmp_path / f"model.ckpt-{step}.pt"
    assert [p.name for p in checkpoints.checkpoints(tmp_path, "model.ckpt", ".pt")] == \
        ["model.ckpt-6.pt", "model.ckpt-8.pt"]
    assert (tmp_path / "model.ckpt.pt").read_bytes() == b"s8"
    assert (tmp_path / "checkpoint").read_text() == "model.ckpt-8.pt\n"
    assert _leftovers(tmp_path) == []
    # steps sort as numbers, not as text; keep <= 0 keeps everything
    checkpoints.save(tmp_path, "model.ckpt", ".pt", 10, _write(b"s10"), keep=0)
    assert checkpoints.latest(tmp_path, "model.ckpt", ".pt").name == "model.ckpt-10.pt"
    assert len(checkpoints.checkpoints(tmp_path, "model.ckpt", ".pt")) == 3


def test_a_failing_write_leaves_earlier_checkpoints_untouched(tmp_path):
    checkpoints.save(tmp_path, "m", ".npz", 2, _write(b"good"), keep=1)

    def broken(tmp):
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(CheckpointError, match=r"m-4.npz.*No space left on device.*m-2.npz"):
        checkpoints.save(tmp_path, "m", ".npz", 4, broken, keep=1)
    # rotation did not run, the old files are intact, no temporary file is left
    assert [p.name for p in checkpoints.checkpoints(tmp_path, "m", ".npz")] == ["m-2.npz"]
    assert (tmp_path / "m-2.npz").read_bytes() == (tmp_path / "m.npz").read_bytes() == b"good"
    assert (tmp_path / "checkpoint").read_text() == "m-2.npz\n"
    assert _leftovers(tmp_path) == []


def test_fault_injection_full_disk_and_torn_write(tmp_path, monkeypatch):
    checkpoints.save(tmp_path, "m", ".pt", 1, _write(b"one"))
    monkeypatch.setenv(faults.ENV, "enospc@write=m-2.pt")
    with pytest.raises(CheckpointError, match="No space left"):
        checkpoints.save(tmp_path, "m", ".pt", 2, _write(b"two"))
    assert not (tmp_path / "m-2.pt").exists() and _leftovers(tmp_path) == []
    # any other exception inside the writer: same clean-up, the error itself propagates
    monkeypatch.delenv(faults.ENV)

    def boom(tmp):
        tmp.write_bytes(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoints.atomic_write(tmp_path / "m-3.pt", boom)
    assert not (tmp_path / "m-3.pt").exists() and _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="ACTION@POINT=VALUE"):
        faults.parse("explode@step=3")


def test_output_guard(tmp_path):
    out = tmp_path / "run"
    checkpoints.check_output(out, "model.ckpt")  # creates it
    (out / "lcurve.out").write_text("# step\n")
    checkpoints.check_output(out, "model.ckpt")  # no checkpoints yet: fine
    checkpoints.save(out, "model.ckpt", ".pt", 2, _write(b"x"))
    (out / ".model.ckpt-4.pt.tmp").write_bytes(b"torn")  # a killed run's temporary file
    with pytest.raises(OutputError, match=r"holds checkpoints of another run.*--restart.*"
                                          r"--force"):
        checkpoints.check_output(out, "model.ckpt")
    checkpoints.check_output(out, "model.ckpt", restart=out / "model.ckpt-2.pt")
    assert not (out / ".model.ckpt-4.pt.tmp").exists()  # torn files are cleared
    checkpoints.check_output(out, "model.ckpt", overwrite=True)
    removed = checkpoints.clear_run(out, "model.ckpt")
    assert sorted(p.name for p in removed) == ["checkpoint", "model.ckpt-2.pt", "model.ckpt.pt"]
    checkpoints.check_output(out, "model.ckpt")
    # a folder that cannot be created (a file is in the way)
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"output='.*file/sub': cannot write there"):
        checkpoints.check_output(tmp_path / "file" / "sub", "model.ckpt")


def test_truncate_lcurve_drops_rows_after_the_restart_step_and_torn_lines(tmp_path):
    path = tmp_path / "lcurve.out"
    head = "# step rmse_trn lr\n# note\n"
    path.write_text(head + "      1   1.0e+00   1.0e-03\n      2   9.0e-01   1.0e-03\n"
                    "      4   8.0e-01   1.0e-03\n      6   7.0e")
    assert checkpoints.truncate_lcurve(path, 2) == 2
    assert path.read_text() == head + "      1   1.0e+00   1.0e-03\n      2   9.0e-01   1.0e-03\n"
    assert checkpoints.truncate_lcurve(path, 2) == 0
    assert checkpoints.truncate_lcurve(tmp_path / "absent", 2) == 0


def test_sampler_states_per_rank():
    state = checkpoints.data_state([{"rng": 0}, {"rng": 1}], {"rng": 9})
    assert checkpoints.restore_data_state(state, 1, 2) == ({"rng": 1}, {"rng": 9}, None)
    train, valid, note = checkpoints.restore_data_state(state, 2, 3)
    assert train is None and valid == {"rng": 9} and "2 process(es)" in note
    legacy = {"rng": 5, "orders": []}  # a checkpoint of the old layout: rank 0's state only
    assert checkpoints.restore_data_state(legacy, 0, 1)[:2] == (legacy, None)
    assert checkpoints.restore_data_state(None, 0, 1)[2] is not None


def test_stop_signals_set_a_flag_and_restore_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with guards.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM and stop.exit_code == 143
        os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C: a flag too
        assert stop.signum == signal.SIGINT and stop.exit_code == 130
        with pytest.raises(KeyboardInterrupt):  # a second one stops at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before
    hint = guards.restart_hint(signal.SIGTERM, 5, "out/model.ckpt-5.pt")
    assert "SIGTERM" in hint and "--restart out/model.ckpt-5.pt" in hint


def test_nonfinite_message_names_step_batch_and_checkpoint():
    msg = guards.nonfinite_message(7, "loss", "0 (data/a)", [3, 1], None)
    assert msg.startswith("step 7: non-finite loss on the batch of system 0 (data/a) "
                          "frames [3, 1]")
    assert "nan_policy" in msg and "no checkpoint" in msg


def test_rewind_drops_the_abandoned_timeline(tmp_path):
    """A restart from step 2 in a folder that already has steps 4 and 6: those would
    outrank the new step-4 file in the rotation (keep=1 would delete the new one)."""
    for step in (2, 4, 6):
        checkpoints.save(tmp_path, "m", ".pt", step, _write(b"old%d" % step), keep=0)
    (tmp_path / "lcurve.out").write_text("# h\n      2   1\n      4   1\n      6   1\n")
    notes = checkpoints.rewind(tmp_path, "m", ".pt", 2, tmp_path / "lcurve.out")
    assert len(notes) == 2 and "m-4.pt, m-6.pt" in notes[1]
    checkpoints.save(tmp_path, "m", ".pt", 4, _write(b"new4"), keep=1)
    assert checkpoints.latest(tmp_path, "m", ".pt").read_bytes() == b"new4"
    assert (tmp_path / "lcurve.out").read_text() == "# h\n      2   1\n"
