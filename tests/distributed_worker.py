"""Two gloo processes training one step of a compiled network, run as its own program
(``python -m tests.distributed_worker MODE OUT``) so the test process never forks or spawns.

MODE ``ddp``: DistributedDataParallel; ``fsdp``: ``fully_shard`` on every block (by its class)
and on the network. Rank 0 saves the full gradients to OUT."""

from __future__ import annotations

import os
import socket
import sys

import torch
import torch.distributed as dist

import compiler
from compiler.lowering.lower import block_class
from tests.conftest import SPECS

SPEC = SPECS / "cifar" / "resnet20.yaml"


def batch(rank: int) -> torch.Tensor:
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(rank))


def _worker(rank: int, mode: str, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    model = compiler.compile(SPEC, seed=0)
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model)  # kept alive: its reducer all-reduces in backward
        ddp(batch(rank)).sum().backward()
        grads = {k: p.grad for k, p in model.named_parameters()}
    else:
        from torch.distributed.fsdp import fully_shard

        mesh = dist.device_mesh.init_device_mesh("cpu", (2,))
        for m in model.modules():
            if isinstance(m, block_class("basic")):
                fully_shard(m, mesh=mesh)
        fully_shard(model, mesh=mesh)
        model(batch(rank)).sum().backward()
        grads = {k: p.grad.full_tensor() for k, p in model.named_parameters()}  # type: ignore[union-attr]
    if rank == 0:
        torch.save(grads, out)
    dist.barrier()  # neither rank tears gloo down while the other still talks to it
    dist.destroy_process_group()
    # leave without C++ teardown: under load, a gloo or FSDP worker thread still joinable at
    # exit aborted a rank ("terminate called without an active exception") after its work
    # was done; what is tested is the gradients saved above
    os._exit(0)


def main() -> None:
    mode, out = sys.argv[1], sys.argv[2]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    torch.multiprocessing.spawn(_worker, args=(mode, port, out), nprocs=2, join=True)


if __name__ == "__main__":
    main()
