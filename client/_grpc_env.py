"""gRPC's process-wide settings for stoker's processes. gRPC reads them once, when it is first
imported, so `client/__init__.py` imports this module before anything else.

GRPC_EXPERIMENTS: gRPC Python (1.85) runs client and server sockets on its EventEngine by
default, whose own threads read a socket and hand each message on to the thread that polls the
completion queue, which hands it on to the event loop. Without those experiments the classic
poller reads in the completion-queue thread itself: one thread hop less per message. Measured
on a bidi stream round trip between two grpc.aio processes on loopback, median of runs: 170 us
of CPU per round trip instead of 244-289, and 173 us of latency instead of 215-252. A value
the user set is kept; a later gRPC that no longer knows these names logs "Unknown experiment"
once per process and goes on.
"""

from __future__ import annotations

import os

GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_listener,-event_engine_for_all_other_endpoints"

os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)
