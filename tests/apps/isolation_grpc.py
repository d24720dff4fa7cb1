# An app whose image pins an older grpcio than the runtime's.
import isolation_probe  # noqa: I001  (first: it records what is imported after it)
import isolation_calls

APP = "isolation-grpc"
app = isolation_calls.define(APP, ["grpcio==1.60.*"], "grpc", port=18462)
