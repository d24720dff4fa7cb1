"""The `stoker` command line: every command, by audience. Operators run daemons
(client/cli/daemons.py), developers deploy and serve apps (apps.py), and both keep the
workspace's secrets and tokens (workspace.py), and run apps' entrypoints (run.py). The modules
beside them do the work."""

from __future__ import annotations

import typer

from client.cli import apps, daemons, images, run, workspace

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Self-hosted, Modal-style web endpoints.")
app_cli = typer.Typer(no_args_is_help=True, help="Deployed and served apps.")
cli.add_typer(app_cli, name="app")
secret_cli = typer.Typer(no_args_is_help=True, help="Secrets: environment variables for containers.")
cli.add_typer(secret_cli, name="secret")
token_cli = typer.Typer(no_args_is_help=True, help="Proxy-auth tokens for requires_proxy_auth endpoints.")
cli.add_typer(token_cli, name="token")
image_cli = typer.Typer(no_args_is_help=True, help="Container images the workers built.")
cli.add_typer(image_cli, name="image")

for command in (daemons.scheduler, daemons.worker, daemons.ingress, daemons.up, apps.deploy, apps.serve, apps.status):
    cli.command()(command)
# Everything after APP_REF belongs to what runs (its options are made from its parameters).
cli.command(context_settings={"allow_extra_args": True, "allow_interspersed_args": False})(run.run)
app_cli.command("list")(apps.app_list)
app_cli.command("stop")(apps.app_stop)
app_cli.command("logs")(apps.app_logs)
secret_cli.command("create")(workspace.secret_create)
secret_cli.command("list")(workspace.secret_list)
secret_cli.command("delete")(workspace.secret_delete)
token_cli.command("create")(workspace.token_create)
token_cli.command("list")(workspace.token_list)
token_cli.command("revoke")(workspace.token_revoke)
image_cli.command("prune")(images.image_prune)


def main() -> None:
    cli()
