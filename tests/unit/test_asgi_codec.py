"""ASGI scopes and messages <-> protobuf, and the flow-control rule (protos/asgi.py)."""

from __future__ import annotations

from typing import Any

import pytest

from protos import asgi
from protos import stoker_pb2 as pb

HTTP_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "https",
    "path": "/items/ä",
    "raw_path": b"/items/%C3%A4",
    "query_string": b"q=1&r=%20",
    "root_path": "",
    "headers": [(b"host", b"acme--web.example.com"), (b"x-multi", b"1"), (b"x-multi", b"2")],
    "client": ("10.0.0.7", 51234),
    "server": ("10.0.0.1", 443),
    "state": {},
}

WEBSOCKET_SCOPE: dict[str, Any] = {
    "type": "websocket",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "scheme": "wss",
    "path": "/ws",
    "raw_path": b"/ws",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"acme--ws.example.com"), (b"sec-websocket-protocol", b"chat, json")],
    "client": ("10.0.0.7", 51235),
    "server": ("10.0.0.1", 443),
    "subprotocols": ["chat", "json"],
    "state": {},
}


def scope_round_trip(scope: dict[str, Any]) -> dict[str, Any]:
    wire = asgi.scope_to_proto(scope).SerializeToString()
    return asgi.scope_from_proto(pb.Scope.FromString(wire))


def event_round_trip(message: dict[str, Any]) -> dict[str, Any]:
    wire = asgi.event_to_proto(message).SerializeToString()
    return asgi.event_from_proto(pb.AsgiEvent.FromString(wire))


def test_http_scope_round_trips() -> None:
    assert scope_round_trip(HTTP_SCOPE) == HTTP_SCOPE


def test_websocket_scope_round_trips() -> None:
    assert scope_round_trip(WEBSOCKET_SCOPE) == WEBSOCKET_SCOPE


def test_scope_without_client_server_or_raw_path_round_trips_as_none() -> None:
    scope = {**HTTP_SCOPE, "client": None, "server": None, "raw_path": None}
    assert scope_round_trip(scope) == scope


def test_scope_fills_asgi_defaults_for_missing_optional_keys() -> None:
    minimal = {"type": "http", "path": "/", "headers": []}
    result = scope_round_trip(minimal)
    assert result["http_version"] == "1.1"
    assert result["scheme"] == "http"
    assert result["method"] == ""
    assert result["query_string"] == b""
    assert result["raw_path"] is None
    assert result["client"] is None
    assert result["server"] is None


def test_http_scope_has_no_subprotocols_and_websocket_scope_has_no_method() -> None:
    assert "subprotocols" not in scope_round_trip(HTTP_SCOPE)
    assert "method" not in scope_round_trip(WEBSOCKET_SCOPE)


def test_each_decoded_scope_gets_its_own_state() -> None:
    proto = asgi.scope_to_proto(HTTP_SCOPE)
    first, second = asgi.scope_from_proto(proto), asgi.scope_from_proto(proto)
    first["state"]["user"] = "x"
    assert second["state"] == {}


@pytest.mark.parametrize(
    "message",
    [
        {"type": "http.request", "body": b"chunk", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": False},
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"text/plain"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
            "trailers": False,
        },
        {"type": "http.response.start", "status": 200, "headers": [], "trailers": True},
        {"type": "http.response.body", "body": b"\x00\xffbinary", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
        {"type": "websocket.connect"},
        {"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x-ws", b"1")]},
        {"type": "websocket.accept", "subprotocol": None, "headers": []},
        {"type": "websocket.receive", "text": "héllo"},
        {"type": "websocket.receive", "text": ""},
        {"type": "websocket.receive", "bytes": b"\x00\x01"},
        {"type": "websocket.receive", "bytes": b""},
        {"type": "websocket.send", "text": "hi"},
        {"type": "websocket.send", "bytes": b"\xfe"},
        {"type": "websocket.close", "code": 4000, "reason": "bye"},
        {"type": "websocket.disconnect", "code": 1001, "reason": ""},
        {"type": "websocket.http.response.start", "status": 403, "headers": [(b"x-denied", b"1")]},
        {"type": "websocket.http.response.body", "body": b"denied", "more_body": False},
    ],
    ids=lambda m: m["type"],
)
def test_event_round_trips(message: dict[str, Any]) -> None:
    assert event_round_trip(message) == message


def test_event_defaults_for_missing_optional_keys() -> None:
    assert event_round_trip({"type": "http.request"}) == {
        "type": "http.request",
        "body": b"",
        "more_body": False,
    }
    assert event_round_trip({"type": "http.response.start", "status": 204}) == {
        "type": "http.response.start",
        "status": 204,
        "headers": [],
        "trailers": False,
    }
    assert event_round_trip({"type": "websocket.accept"}) == {
        "type": "websocket.accept",
        "subprotocol": None,
        "headers": [],
    }
    assert event_round_trip({"type": "websocket.close"}) == {
        "type": "websocket.close",
        "code": 1000,
        "reason": "",
    }


def test_websocket_close_with_reason_none_decodes_as_empty() -> None:
    message = {"type": "websocket.close", "code": 1000, "reason": None}
    assert event_round_trip(message)["reason"] == ""


def test_websocket_message_with_text_none_carries_its_bytes() -> None:
    message = {"type": "websocket.send", "bytes": b"data", "text": None}
    assert event_round_trip(message) == {"type": "websocket.send", "bytes": b"data"}


def test_body_given_as_bytearray_or_memoryview_is_sent_as_bytes() -> None:
    for body in (bytearray(b"abc"), memoryview(b"abc")):
        message = {"type": "http.response.body", "body": body, "more_body": False}
        assert event_round_trip(message)["body"] == b"abc"


@pytest.mark.parametrize("message_type", ["http.request", "http.response.body"])
def test_body_chunks_but_the_last_need_credit(message_type: str) -> None:
    assert asgi.needs_credit(message_type, more_body=True)
    assert not asgi.needs_credit(message_type, more_body=False)


@pytest.mark.parametrize("message_type", ["websocket.send", "websocket.receive"])
def test_every_websocket_message_needs_credit(message_type: str) -> None:
    assert asgi.needs_credit(message_type, more_body=False)
    assert asgi.needs_credit(message_type, more_body=True)


@pytest.mark.parametrize(
    "message_type",
    [
        "http.response.start",
        "http.disconnect",
        "websocket.connect",
        "websocket.accept",
        "websocket.close",
        "websocket.disconnect",
        "websocket.http.response.start",
    ],
)
def test_control_messages_need_no_credit(message_type: str) -> None:
    assert not asgi.needs_credit(message_type, more_body=False)
    assert not asgi.needs_credit(message_type, more_body=True)
