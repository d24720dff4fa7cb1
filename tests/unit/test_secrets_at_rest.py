"""Secret values at rest: sealed in stoker.db under a key beside it, the files private, and a
database from before sealing migrated when it is opened."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat
from pathlib import Path

import pytest

from scheduler import state_dir
from scheduler.store import Store, StoreError

VALUE = "pl41n-t3xt-v4lue-9f3e"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _file_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def _old_plaintext_db(path: Path) -> None:
    """The secrets table as stoker kept it before values were sealed: plain JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE secrets (name TEXT PRIMARY KEY, payload TEXT NOT NULL, created_at REAL NOT NULL)")
    db.execute("INSERT INTO secrets VALUES ('old', ?, 1.0)", (json.dumps({"DB_PASSWORD": VALUE}),))
    db.commit()
    db.close()
    path.chmod(0o644)


def test_a_secret_value_is_not_in_the_database_files_and_reads_back(tmp_path: Path) -> None:
    db = tmp_path / "state" / "stoker.db"
    store = Store(db)
    store.put_secret("s", {"API_KEY": VALUE}, 1.0)
    assert VALUE.encode() not in _file_bytes(db)  # the WAL included: nothing was checkpointed yet
    assert store.secrets() == {"s": ({"API_KEY": VALUE}, 1.0)}
    store.close()
    again = Store(db)
    assert again.secrets()["s"][0] == {"API_KEY": VALUE}
    again.close()
    assert VALUE.encode() not in _file_bytes(db)
    assert _mode(db) == 0o600
    assert _mode(db.with_name("secrets-key")) == 0o600
    assert _mode(db.parent) == 0o700


def test_a_plaintext_database_is_sealed_when_opened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "stoker.db"
    _old_plaintext_db(db)
    assert VALUE.encode() in _file_bytes(db)  # the test's premise: the old file shows it
    with caplog.at_level(logging.INFO, logger="scheduler.store"):
        store = Store(db)
    assert "encrypted 1 secret(s)" in caplog.text
    assert store.secrets() == {"old": ({"DB_PASSWORD": VALUE}, 1.0)}
    assert VALUE.encode() not in _file_bytes(db)
    store.close()
    assert VALUE.encode() not in _file_bytes(db)


def test_sealed_secrets_without_their_key_are_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "stoker.db"
    store = Store(db)
    store.put_secret("s", {"K": VALUE}, 1.0)
    store.close()
    key = db.with_name("secrets-key")
    key.unlink()
    with pytest.raises(StoreError, match=r"encrypted, but their key .*secrets-key is missing"):
        Store(db)
    assert not key.exists()  # no new key was made: it could never open them


def test_sealed_secrets_with_another_key_are_a_clear_error(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "stoker.db", tmp_path / "b" / "stoker.db"
    Store(first).close()
    Store(second).close()
    store = Store(first)
    store.put_secret("s", {"K": VALUE}, 1.0)
    store.close()
    first.with_name("secrets-key").write_bytes(second.with_name("secrets-key").read_bytes())
    with pytest.raises(StoreError, match="secret 's' in the state store does not open with the key"):
        Store(first)


def test_a_row_copied_under_another_name_does_not_open(tmp_path: Path) -> None:
    db = tmp_path / "stoker.db"
    store = Store(db)
    store.put_secret("a", {"K": VALUE}, 1.0)
    store.close()
    raw = sqlite3.connect(db)
    raw.execute("INSERT INTO secrets SELECT 'b', payload, created_at FROM secrets WHERE name = 'a'")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="secret 'b'"):
        Store(db)


def test_a_state_dir_open_to_others_is_tightened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "state"
    _old_plaintext_db(directory / "stoker.db")
    (directory / "workspace-token").write_text("wt-x\n")
    (directory / "workspace-token").chmod(0o644)
    directory.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="scheduler.state_dir"):
        state_dir.make_private(directory)
    assert _mode(directory) == 0o700
    assert _mode(directory / "stoker.db") == 0o600
    assert _mode(directory / "workspace-token") == 0o600
    assert f"{directory} was mode 755" in caplog.text
    caplog.clear()
    state_dir.make_private(directory)
    assert caplog.text == ""  # already private: nothing to say


def test_a_new_state_dir_is_private(tmp_path: Path) -> None:
    state_dir.make_private(tmp_path / "new" / "state")
    assert _mode(tmp_path / "new" / "state") == 0o700
