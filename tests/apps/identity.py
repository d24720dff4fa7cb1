# How a test app names its own process so the test, on the host, can find it: in a sandbox each
# container's process is PID 1 of its own PID namespace, so a pid alone names no one.
import os


def pid() -> str:
    """"NAMESPACE:PID:CONTAINER": this process's PID namespace (its inode) and its pid there, and
    its container's id (a later container may get a freed namespace's inode)."""
    namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026532281]"
    return f"{namespace[5:-1]}:{os.getpid()}:{os.environ.get('STOKER_CONTAINER_ID', '')}"
