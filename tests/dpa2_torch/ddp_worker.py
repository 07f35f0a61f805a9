"""Worker of the data-parallel test (run by torch.multiprocessing.spawn, gloo, localhost)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from dpa2_core.training.settings import ModelSettings, TrainInput
from dpa2_torch.training import dist as ddp
from dpa2_torch.training.batches import DataSet
from dpa2_torch.training.checkpoint import build_model
from dpa2_torch.training.loss import energy_force_loss
from dpa2_torch.training.trainer import Trainer


def loss_of(model, data: DataSet, frames: list[int], inp: TrainInput):
    """The training loss of ``frames`` of the first system (create_graph for forces)."""
    b = data.batch(0, frames)
    pred = model(b.coord, b.atype, neighbors=b.neighbors, create_graph=True, virial=False)
    prefs = inp.loss.at(inp.lr.start_lr, inp.lr.start_lr)
    return energy_force_loss(pred, b.energy, b.force, b.natoms, prefs)[0]


def grads_of(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def run(rank: int, world: int, input_path: str, out: str) -> None:
    torch.set_num_threads(1)
    out_dir = Path(out)
    dist.init_process_group("gloo", init_method=f"file://{out_dir / 'store'}", rank=rank,
                            world_size=world)
    try:
        inp = TrainInput.from_file(input_path)
        info = ddp.init_from_env("cpu")  # joins the group initialised above
        model = build_model(ModelSettings.from_input(inp.model, 3))
        data = DataSet(inp.training_data, ["O", "H"], model.config, torch.float64,
                       info.device)
        net = ddp.data_parallel(model, info)
        loss_of(net, data, [rank], inp).backward()  # rank r holds frame r
        torch.save(grads_of(model), out_dir / f"grads_{rank}.pt")
        trainer = Trainer(inp, out_dir / "run", log=lambda *a: None)
        trainer.run()
        torch.save(trainer.model.state_dict(), out_dir / f"params_{rank}.pt")
    finally:
        dist.destroy_process_group()
