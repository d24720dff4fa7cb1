"""Secrets: created by the CLI, given to containers as environment variables, never shown."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import APPS, Cluster


def test_the_seed_bearer_example_reads_its_secret(shared_cluster: Cluster) -> None:
    created = shared_cluster.stoker("secret", "create", "auth-token", "AUTH_TOKEN=s3cr3t-value")
    assert created.returncode == 0, created.stderr
    assert "s3cr3t-value" not in created.stdout
    url = shared_cluster.deploy("seed_bearer.py")["protected"]
    assert shared_cluster.get(url, headers={"Authorization": "Bearer s3cr3t-value"}).json() == "success!"
    assert shared_cluster.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert shared_cluster.get(url).status_code == 401  # HTTPBearer's own answer without a header (FastAPI >= 0.122)


def test_a_missing_secret_fails_the_deploy_with_its_name(shared_cluster: Cluster, tmp_path: Path) -> None:
    app = tmp_path / "needs_secret.py"
    app.write_text((APPS / "seed_bearer.py").read_text().replace('"auth-token"', '"no-such-secret"'))
    result = shared_cluster.stoker("deploy", str(app))
    assert result.returncode == 1
    assert "secret 'no-such-secret' does not exist" in result.stderr
    assert "stoker secret create no-such-secret" in result.stderr


def test_inline_and_dotenv_secrets_become_environment_variables(shared_cluster: Cluster, tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# database\nexport DB_URL=postgres://u:p@db/x\nQUOTED='with spaces'\n\n")
    made = shared_cluster.stoker("secret", "create", "dotenv", "--from-dotenv", str(dotenv))
    assert made.returncode == 0, made.stderr
    url = shared_cluster.deploy("inline_secret.py")["env"]
    assert shared_cluster.get(url).json() == {
        "GREETING": "hi",
        "EMPTY": None,
        "DB_URL": "postgres://u:p@db/x",
        "QUOTED": "with spaces",
    }


def test_secret_values_are_never_shown(shared_cluster: Cluster) -> None:
    assert shared_cluster.stoker("secret", "create", "shown", "TOKEN=never-print-me").returncode == 0
    again = shared_cluster.stoker("secret", "create", "shown", "TOKEN=other")
    assert again.returncode == 1
    assert "--force" in again.stderr
    assert shared_cluster.stoker("secret", "create", "shown", "TOKEN=never-print-me", "--force").returncode == 0
    listed = shared_cluster.stoker("secret", "list").stdout
    assert "shown" in listed and "TOKEN" in listed and "never-print-me" not in listed
    assert shared_cluster.output is not None
    assert "never-print-me" not in shared_cluster.output.text()
    assert shared_cluster.stoker("secret", "delete", "shown").returncode == 0
    assert shared_cluster.stoker("secret", "delete", "shown").returncode == 1


def test_a_bad_pair_is_a_clear_error(shared_cluster: Cluster) -> None:
    result = shared_cluster.stoker("secret", "create", "bad", "NOEQUALS")
    assert result.returncode == 1
    assert "pair 1 is not KEY=VALUE" in result.stderr
    assert "NOEQUALS" not in result.stderr
