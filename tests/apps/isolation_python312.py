# An app whose image is of another Python than the worker's, and pins an older protobuf.
import isolation_probe  # noqa: I001  (first: it records what is imported after it)
import isolation_calls

APP = "isolation-python312"
app = isolation_calls.define(APP, ["protobuf==4.25.*"], "google.protobuf", port=18463, python_version="3.12")
