"""Each container (and each fork template) in its own sandbox: user, mount, PID, IPC, UTS and
(optionally) network namespaces, rooted in an overlay of its image's layers, a seccomp filter.

- spec.py: SandboxSpec (what a sandbox is made of, host paths) and Rooting (what entering does).
- launch.py: start a program in a new sandbox from the host (`python -m worker.sandbox`).
- enter.py, rooting.py: the namespaces, the mounts, pivot_root; shared by the launcher and by a
  template's forked children (worker/runtime/template.py).
- seccomp.py: the syscall filter. preflight.py: can this worker build sandboxes at all.
"""
