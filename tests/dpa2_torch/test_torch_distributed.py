"""Data parallelism: two gloo processes on localhost (DistributedDataParallel)."""

from __future__ import annotations

import torch
import torch.multiprocessing as mp
from conftest import tiny_input
from ddp_worker import grads_of, loss_of, run
from torch_helpers import one_thread  # noqa: F401  (autouse fixture)

from dpa2_core.training.settings import ModelSettings, TrainInput
from dpa2_torch.training.batches import DataSet
from dpa2_torch.training.checkpoint import build_model


def test_two_processes_average_gradients_and_stay_in_sync(tmp_path):
    path = tiny_input(tmp_path, steps=3)
    mp.spawn(run, args=(2, str(path), str(tmp_path)), nprocs=2, join=True)

    # the averaged gradient is the single-process gradient of the combined batch
    inp = TrainInput.from_file(path)
    model = build_model(ModelSettings.from_input(inp.model, 3))
    data = DataSet(inp.training_data, ["O", "H"], model.config, torch.float64,
                   torch.device("cpu"))
    loss_of(model, data, [0, 1], inp).backward()
    single = grads_of(model)
    ranks = [torch.load(tmp_path / f"grads_{r}.pt", weights_only=True) for r in (0, 1)]
    assert single.keys() == ranks[0].keys() == ranks[1].keys()
    for name, g in single.items():
        for got in ranks:
            torch.testing.assert_close(got[name], g, rtol=1e-10, atol=1e-14, msg=name)

    # after training steps both ranks hold identical parameters, and rank 0 wrote outputs
    a, b = (torch.load(tmp_path / f"params_{r}.pt", weights_only=True) for r in (0, 1))
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert (tmp_path / "run" / "lcurve.out").is_file()
    assert (tmp_path / "run" / "model.ckpt-2.pt").is_file()
