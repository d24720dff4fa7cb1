"""`stoker image prune`: each worker deletes the image layers no live app version uses."""

from __future__ import annotations

from client.cli.errors import reports_errors
from client.connection import rpc_errors, scheduler_stub
from protos import stoker_pb2 as pb

PRUNE_TIMEOUT = 180  # the scheduler waits up to 120 s for its workers


@reports_errors()
def image_prune() -> None:
    """Delete the images and image layers that no live app version uses, on every worker."""
    stub, metadata = scheduler_stub()
    with rpc_errors():
        reply = stub.ImagePrune(pb.ImagePruneRequest(), metadata=metadata, timeout=PRUNE_TIMEOUT)
    if not reply.workers:
        print("No worker is connected: nothing was pruned.")
    for worker in reply.workers:
        if worker.error:
            print(f"worker {worker.worker_id}: {worker.error}")
        else:
            print(
                f"worker {worker.worker_id}: removed {worker.images} image(s) and {worker.layers} layer(s), "
                f"{worker.bytes / 2**20:.1f} MiB"
            )
