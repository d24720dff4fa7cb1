"""`python -m worker.runtime`: a container started as a fresh interpreter (worker/runtime/container.py).

The runtime's own gRPC and protobuf come first, from its private paths (worker/runtime/isolation.py),
before anything imports them; the app is imported later, in container.main().
"""

from __future__ import annotations

from worker.runtime import isolation

if __name__ == "__main__":
    isolation.isolate()
    from worker.runtime.container import main

    main()
