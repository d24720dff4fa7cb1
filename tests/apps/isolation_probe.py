# What an app whose image pins its own gRPC or protobuf sees of them in its container, imported
# first by the isolation_* apps. Which versions and files `import grpc` / `import google.protobuf`
# give the app; and every import of grpc, google.* or protos that happens after the app's own
# (the runtime must have imported all of its own before the app ran: a later one would load the
# app's version into the runtime, or the runtime's into the app).
import importlib.abc
import os
import sys

import google.protobuf
import grpc
from google.protobuf import json_format, struct_pb2

WATCHED = ("grpc", "google", "protos")
late = []


class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in WATCHED:
            late.append(fullname)
        return None


sys.meta_path.insert(0, Recorder())


def from_image(module):
    return os.path.realpath(module.__file__).startswith(os.path.realpath(sys.prefix) + os.sep)


def seen(pinned):
    """What the app sees; `pinned`: the package its image pins ("grpc" or "google.protobuf")."""
    message = struct_pb2.Struct()
    message.update({"answer": 42})
    # By the module's own name: grpc's __init__ lists grpc_tools, another distribution, as grpc.tools.
    foreign = sorted(
        module.__name__
        for module in list(sys.modules.values())
        if (module.__name__ == pinned or module.__name__.startswith(pinned + "."))
        and getattr(module, "__file__", None)
        and not from_image(module)
    )
    return {
        "protobuf": google.protobuf.__version__,
        "protobuf_from_image": from_image(google.protobuf),
        "grpc": grpc.__version__,
        "grpc_from_image": from_image(grpc),
        "python": "%d.%d" % sys.version_info[:2],
        "foreign": foreign,  # modules of the pinned package in sys.modules not from the image
        "message": json_format.MessageToDict(struct_pb2.Struct.FromString(message.SerializeToString())),
        "late_imports": list(late),
    }
