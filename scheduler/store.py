"""The scheduler's state store: deployed apps and their code bundles, in one SQLite file.

Every deploy is one transaction, so a crash mid-deploy leaves the previous version in place. The
file is mode 0600 (SQLite gives its -wal and -shm files the database's mode), and secret values
in it are sealed (scheduler/secret_box.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from protos import stoker_pb2 as pb
from scheduler.image_spec import blob_digests
from scheduler.secret_box import KEY_FILE, SecretBox, SecretKeyError, is_sealed

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (
    hash TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS image_blobs (
    digest TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    environment TEXT NOT NULL,
    ephemeral INTEGER NOT NULL,
    version INTEGER NOT NULL,
    definition BLOB NOT NULL,
    bundle_hash TEXT NOT NULL REFERENCES bundles(hash),
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS deployed_app_names ON apps(name, environment) WHERE ephemeral = 0;
CREATE TABLE IF NOT EXISTS proxy_tokens (
    key TEXT PRIMARY KEY,
    secret_sha256 BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS workspace_tokens (
    token_sha256 BLOB PRIMARY KEY,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class AppRecord:
    app_id: str
    name: str
    environment: str
    ephemeral: bool
    version: int
    definition: pb.AppDefinition  # without its bundle bytes
    bundle_hash: str
    created_at: float


class StoreError(Exception):
    """The state store cannot be opened as it is; the message says what to do."""


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # private before SQLite first opens it
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Overwritten and deleted rows are zeroed, not left in free pages: an old plaintext
        # secret must not outlive its sealing in the file.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        try:
            self._box = SecretBox.load(path.with_name(KEY_FILE), create=not self._any_sealed())
        except SecretKeyError as exc:
            self._db.close()
            raise StoreError(str(exc)) from None
        self._seal_plaintext_secrets()
        try:
            self.secrets()  # every sealed row opens with this key: fail at startup, not at a deploy
        except StoreError:
            self._db.close()
            raise

    def _any_sealed(self) -> bool:
        return any(is_sealed(r[0]) for r in self._db.execute("SELECT payload FROM secrets"))

    def _seal_plaintext_secrets(self) -> None:
        """Seal the secrets an older stoker kept in plain text, and leave no copy in the files."""
        rows = self._db.execute("SELECT name, payload FROM secrets").fetchall()
        plain = [(name, payload) for name, payload in rows if not is_sealed(payload)]
        if not plain:
            return
        with self._db:
            self._db.execute("BEGIN")
            for name, payload in plain:
                sealed = self._box.seal(name, self._box.open(name, payload))
                self._db.execute("UPDATE secrets SET payload = ? WHERE name = ?", (sealed, name))
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL's old page images go too
        log.info("encrypted %d secret(s) that an older stoker kept in plain text", len(plain))

    def close(self) -> None:
        self._db.close()

    def save_app(self, record: AppRecord, bundle: bytes, image_blobs: Iterable[pb.ImageBlob] = ()) -> None:
        """Write the app, its bundle and its images' local files in one transaction."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR IGNORE INTO bundles(hash, data) VALUES (?, ?)", (record.bundle_hash, bundle))
            for blob in image_blobs:
                self._db.execute("INSERT OR IGNORE INTO image_blobs VALUES (?, ?)", (blob.digest, blob.data))
            self._db.execute(
                "INSERT OR REPLACE INTO apps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.app_id,
                    record.name,
                    record.environment,
                    int(record.ephemeral),
                    record.version,
                    record.definition.SerializeToString(),
                    record.bundle_hash,
                    record.created_at,
                ),
            )

    def delete_app(self, app_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM apps WHERE app_id = ?", (app_id,))
            self._db.execute("DELETE FROM bundles WHERE hash NOT IN (SELECT bundle_hash FROM apps)")
            self._delete_unused_blobs()

    def delete_ephemeral(self) -> None:
        """Serve sessions do not survive a scheduler restart; their apps go with them."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM apps WHERE ephemeral = 1")
            self._db.execute("DELETE FROM bundles WHERE hash NOT IN (SELECT bundle_hash FROM apps)")
            self._delete_unused_blobs()

    def _delete_unused_blobs(self) -> None:
        used = blob_digests(
            f.image
            for (definition,) in self._db.execute("SELECT definition FROM apps")
            for f in pb.AppDefinition.FromString(definition).functions
        )
        for (digest,) in self._db.execute("SELECT digest FROM image_blobs").fetchall():
            if digest not in used:
                self._db.execute("DELETE FROM image_blobs WHERE digest = ?", (digest,))

    def save_image_blobs(self, image_blobs: Iterable[pb.ImageBlob]) -> None:
        """Keep a deploy's local files before its images build (workers fetch them while they
        build); those of a deploy that fails go with the next app that is deleted."""
        with self._db:
            self._db.execute("BEGIN")
            for blob in image_blobs:
                self._db.execute("INSERT OR IGNORE INTO image_blobs VALUES (?, ?)", (blob.digest, blob.data))

    def image_blob_digests(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT digest FROM image_blobs")}

    def get_image_blob(self, digest: str) -> bytes | None:
        row = self._db.execute("SELECT data FROM image_blobs WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def load_apps(self) -> list[AppRecord]:
        rows = self._db.execute(
            "SELECT app_id, name, environment, ephemeral, version, definition, bundle_hash, created_at "
            "FROM apps ORDER BY created_at"
        ).fetchall()
        return [
            AppRecord(
                app_id=r[0],
                name=r[1],
                environment=r[2],
                ephemeral=bool(r[3]),
                version=r[4],
                definition=pb.AppDefinition.FromString(r[5]),
                bundle_hash=r[6],
                created_at=r[7],
            )
            for r in rows
        ]

    # Tokens: only SHA-256 digests of secrets are stored. Secrets are 128+ random bits, so a
    # plain digest is as strong as a slow KDF here, and cheap enough to check on every request.

    def add_proxy_token(self, key: str, secret_sha256: bytes, created_at: float) -> None:
        self._db.execute("INSERT INTO proxy_tokens VALUES (?, ?, ?)", (key, secret_sha256, created_at))

    def delete_proxy_token(self, key: str) -> bool:
        return self._db.execute("DELETE FROM proxy_tokens WHERE key = ?", (key,)).rowcount > 0

    def proxy_tokens(self) -> list[tuple[str, bytes, float]]:
        rows = self._db.execute("SELECT key, secret_sha256, created_at FROM proxy_tokens ORDER BY created_at")
        return [(r[0], bytes(r[1]), r[2]) for r in rows]

    # Secrets: the values must reach containers, so they are sealed, not hashed.

    def put_secret(self, name: str, values: dict[str, str], created_at: float) -> None:
        payload = self._box.seal(name, values)
        self._db.execute("INSERT OR REPLACE INTO secrets VALUES (?, ?, ?)", (name, payload, created_at))

    def delete_secret(self, name: str) -> bool:
        return self._db.execute("DELETE FROM secrets WHERE name = ?", (name,)).rowcount > 0

    def secrets(self) -> dict[str, tuple[dict[str, str], float]]:
        rows = self._db.execute("SELECT name, payload, created_at FROM secrets ORDER BY name")
        try:
            return {r[0]: (self._box.open(r[0], r[1]), r[2]) for r in rows}
        except SecretKeyError as exc:
            raise StoreError(str(exc)) from None

    def add_workspace_token(self, token_sha256: bytes, created_at: float) -> None:
        self._db.execute("INSERT OR IGNORE INTO workspace_tokens VALUES (?, ?)", (token_sha256, created_at))

    def workspace_tokens(self) -> set[bytes]:
        return {bytes(r[0]) for r in self._db.execute("SELECT token_sha256 FROM workspace_tokens")}

    def get_bundle(self, bundle_hash: str) -> bytes | None:
        row = self._db.execute("SELECT data FROM bundles WHERE hash = ?", (bundle_hash,)).fetchone()
        return None if row is None else bytes(row[0])
