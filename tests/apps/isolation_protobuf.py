# An app whose image pins an older protobuf than the runtime's (streamlit 1.35 pins 4.25).
import isolation_probe  # noqa: I001  (first: it records what is imported after it)
import isolation_calls

APP = "isolation-protobuf"
app = isolation_calls.define(APP, ["protobuf==4.25.*"], "google.protobuf", port=18461)
