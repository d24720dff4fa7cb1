"""The local files a deploy's images add: kept by the scheduler's store while an app names them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from protos import stoker_pb2 as pb
from scheduler.store import AppRecord, Store


def blob(data: bytes) -> pb.ImageBlob:
    return pb.ImageBlob(digest="sha256:" + hashlib.sha256(data).hexdigest(), data=data)


def record(app_id: str, digests: list[str]) -> AppRecord:
    steps = [pb.ImageStep(add_files=pb.ImageFiles(digest=d)) for d in digests]
    definition = pb.AppDefinition(name=app_id, functions=[pb.FunctionSpec(name="f", image=pb.ImageSpec(steps=steps))])
    return AppRecord(app_id, app_id, "", False, 1, definition, "b-" + app_id, 0.0)


def test_blobs_stay_while_an_app_names_them_and_go_with_the_last(tmp_path: Path) -> None:
    store = Store(tmp_path / "stoker.db")
    shared, own = blob(b"shared"), blob(b"own")
    store.save_app(record("one", [shared.digest, own.digest]), b"bundle-one", [shared, own])
    store.save_app(record("two", [shared.digest]), b"bundle-two", [shared])
    assert store.get_image_blob(own.digest) == b"own"
    store.delete_app("one")
    assert store.get_image_blob(own.digest) is None
    assert store.get_image_blob(shared.digest) == b"shared"
    store.delete_app("two")
    assert store.image_blob_digests() == set()


def test_a_failed_deploys_blobs_go_with_the_next_deletion(tmp_path: Path) -> None:
    store = Store(tmp_path / "stoker.db")
    orphan = blob(b"never deployed")
    store.save_image_blobs([orphan])  # before the build that then failed
    assert store.get_image_blob(orphan.digest) == b"never deployed"
    store.save_app(record("one", []), b"bundle", [])
    store.delete_app("one")
    assert store.get_image_blob(orphan.digest) is None
