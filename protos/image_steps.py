"""An image spec's steps, as the scheduler names them and the worker builds them: the spec's own,
or, for a spec an older client sent (pip_packages, env, commands), those fields as steps."""

from __future__ import annotations

from protos import stoker_pb2 as pb


def steps_of(spec: pb.ImageSpec) -> list[pb.ImageStep]:
    if spec.steps:
        return list(spec.steps)
    steps = []
    if spec.pip_packages:
        steps.append(pb.ImageStep(pip_install=pb.ImagePipInstall(packages=spec.pip_packages)))
    if spec.env:
        steps.append(pb.ImageStep(env=pb.ImageEnv(vars=spec.env)))
    if spec.commands:
        steps.append(pb.ImageStep(run_commands=pb.ImageCommands(commands=spec.commands)))
    return steps


def step_key(step: pb.ImageStep) -> str:
    """What a step is, for image and layer ids: its fields, but not the description of where an
    add_local_* step's files came from (their digest says what they are)."""
    keyed = pb.ImageStep()
    keyed.CopyFrom(step)
    if keyed.HasField("add_files"):
        keyed.add_files.description = ""
    return keyed.SerializeToString(deterministic=True).hex()


def describe(step: pb.ImageStep) -> str:
    """One line for the build output: `apt_install cowsay`, `run_commands echo hi`."""
    kind = step.WhichOneof("kind") or "empty"
    if step.HasField("apt_install"):
        detail = " ".join(step.apt_install.packages)
    elif step.HasField("pip_install") or step.HasField("uv_pip_install"):
        pip = step.pip_install if step.HasField("pip_install") else step.uv_pip_install
        detail = " ".join([*pip.packages, *(["-r requirements.txt"] if pip.requirements_txt else [])])
    elif step.HasField("run_commands"):
        detail = " && ".join(step.run_commands.commands)
    elif step.HasField("env"):
        detail = " ".join(f"{k}={v}" for k, v in sorted(step.env.vars.items()))
    elif step.HasField("workdir"):
        detail = step.workdir
    elif step.HasField("add_files"):
        return step.add_files.description or f"add_files {step.add_files.digest}"
    else:
        detail = ""
    return f"{kind} {detail}".strip()
