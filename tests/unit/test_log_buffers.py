"""The bounded buffers between containers and log readers, and secret redaction: pure code."""

from __future__ import annotations

import asyncio

from protos import stoker_pb2 as pb
from scheduler.logs import LogHub, LogSubscription
from worker.log_shipper import MAX_LINE_CHARS, LogShipper
from worker.redact import Redactor, secret_values


def line(text: str, container: str = "ct-a", app: str = "ap-1") -> pb.LogLine:
    return pb.LogLine(app_id=app, function="fn", container_id=container, time=1.0, text=text)


def texts(batch: pb.ContainerLogs | None) -> list[str]:
    return [] if batch is None else [entry.text for entry in batch.lines]


# ---------------------------------------------------------------- worker side


def test_the_shipper_batches_and_bounds_what_is_on_the_stream() -> None:
    shipper = LogShipper(send=lambda _: None, max_pending=100, max_batch=3, max_in_flight=2)
    for i in range(7):
        shipper.add(line(f"l{i}"))
    assert texts(shipper.take_batch()) == ["l0", "l1", "l2"]
    assert texts(shipper.take_batch()) == ["l3", "l4", "l5"]
    assert shipper.take_batch() is None  # two batches wait on the stream: no third
    shipper.delivered()
    assert texts(shipper.take_batch()) == ["l6"]
    shipper.reset()  # a new stream: nothing of the old one is in flight
    assert shipper.take_batch() is None  # and nothing is pending


def test_the_shipper_drops_past_its_bound_and_says_how_many_in_place() -> None:
    shipper = LogShipper(send=lambda _: None, max_pending=2, max_batch=10, max_in_flight=1)
    for text in ("kept 1", "kept 2", "lost 1", "lost 2", "lost 3"):
        shipper.add(line(text))
    shipper.add(line("other container lost", container="ct-b"))
    batch = shipper.take_batch()
    assert texts(batch)[:2] == ["kept 1", "kept 2"]
    assert texts(batch)[2].startswith("[stoker] 3 lines dropped")
    assert texts(batch)[3].startswith("[stoker] 1 lines dropped")
    assert batch is not None and [entry.container_id for entry in batch.lines[2:]] == ["ct-a", "ct-b"]
    for text in ("next 1", "next 2", "lost 4", "lost 5"):
        shipper.add(line(text))  # one batch in flight: these wait, and the buffer overflows
    shipper.delivered()
    batch = shipper.take_batch()
    assert texts(batch)[:2] == ["next 1", "next 2"]
    assert texts(batch)[2].startswith("[stoker] 2 lines dropped")
    shipper.add(line("after room"))
    shipper.delivered()
    assert texts(shipper.take_batch()) == ["after room"]  # counts start again from zero


def test_the_shipper_cuts_very_long_lines() -> None:
    shipper = LogShipper(send=lambda _: None)
    shipper.add(line("x" * 100_000))
    (sent,) = texts(shipper.take_batch())
    assert sent.startswith("x" * MAX_LINE_CHARS) and sent.endswith("[stoker: line cut]")
    assert len(sent) < MAX_LINE_CHARS + 100


def test_the_shipper_sends_what_containers_print() -> None:
    sent: list[pb.ContainerLogs] = []

    async def main() -> None:
        shipper = LogShipper(send=sent.append)
        task = asyncio.create_task(shipper.run())
        shipper.add(line("one"))
        shipper.add(line("two"))
        for _ in range(100):
            if sent:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert [texts(batch) for batch in sent] == [["one", "two"]]


def test_secret_values_are_hidden_longest_first_and_line_by_line() -> None:
    env = {"TOKEN": "abc123", "LONGER": "abc123-and-more", "PEM": "-----BEGIN-----\nMIIBOg\n", "STOKER_X": "visible"}
    redact = Redactor(secret_values(env))
    assert redact("t=abc123-and-more u=abc123 v=visible") == "t=*** u=*** v=visible"
    assert redact("key MIIBOg here") == "key *** here"
    assert Redactor([])("nothing to hide") == "nothing to hide"
    assert Redactor(["a.b"])("axb a.b") == "axb ***"  # values are literal, not patterns


def test_the_call_credential_is_hidden_though_other_stoker_variables_are_not() -> None:
    redact = Redactor(secret_values({"STOKER_TOKEN": "call.ap-1.f00d", "STOKER_ENVIRONMENT": "staging"}))
    assert redact("token call.ap-1.f00d in staging") == "token *** in staging"


# ---------------------------------------------------------------- scheduler side


def test_the_hub_keeps_a_bounded_ring_per_live_app_only() -> None:
    hub = LogHub(is_live=lambda app_id: app_id == "ap-1", ring_lines=3)
    hub.publish([line(f"l{i}") for i in range(5)] + [line("late", app="ap-gone")])
    assert [entry.text for entry in hub.recent("ap-1")] == ["l2", "l3", "l4"]
    assert [entry.text for entry in hub.recent("ap-1", tail=1)] == ["l4"]
    assert hub.recent("ap-gone") == []
    hub.forget("ap-1")
    assert hub.recent("ap-1") == []


def test_a_slow_subscriber_loses_lines_with_notice_and_never_blocks_publishing() -> None:
    async def main() -> list[str]:
        hub = LogHub(is_live=lambda _: True)
        with hub.subscribe("ap-1") as subscription:
            subscription._queue = asyncio.Queue(4)  # a small bound, to see it overflow
            hub.publish([line(f"l{i}") for i in range(10)])
            got = [await subscription.get() for _ in range(4)]
            hub.publish([line("after")])
            got.append(await subscription.get())
            hub.forget("ap-1")
            got.append(await subscription.get())
        return [entry.text if entry is not None else "END" for entry in got]

    got = asyncio.run(main())
    assert got[:3] == ["l0", "l1", "l2"]
    assert got[3].startswith("[stoker] 7 lines dropped")
    assert got[4:] == ["after", "END"]


def test_a_closed_subscription_ends_even_when_its_queue_was_full() -> None:
    async def main() -> list[pb.LogLine | None]:
        subscription = LogSubscription("ap-1", maxsize=2)
        subscription.offer(line("l0"))
        subscription.offer(line("l1"))  # dropped: the last place is for the notice
        subscription.close()
        return [await subscription.get() for _ in range(3)]

    first, notice, end = asyncio.run(main())
    assert first is not None and first.text == "l0"
    assert notice is not None and notice.text.startswith("[stoker] 1 lines dropped")
    assert end is None


def test_a_stopped_apps_lines_stay_until_its_last_container_has_stopped() -> None:
    live = {"ap-1", "ap-2"}
    hub = LogHub(is_live=lambda app_id: app_id in live)
    hub.publish([line("before", app="ap-1")])
    live.clear()  # both apps stopped; ap-1 has two containers still stopping, ap-2 one
    hub.app_stopped("ap-1", containers_left=2)
    hub.app_stopped("ap-2", containers_left=1)
    hub.publish([line("exit hook", app="ap-1"), line("first words at exit", app="ap-2")])
    hub.container_gone("ap-1", containers_left=1)
    hub.publish([line("second exit hook", app="ap-1")])
    assert [entry.text for entry in hub.recent("ap-1")] == ["before", "exit hook", "second exit hook"]
    assert [entry.text for entry in hub.recent("ap-2")] == ["first words at exit"]
    hub.container_gone("ap-1", containers_left=0)
    hub.publish([line("too late", app="ap-1")])
    assert hub.recent("ap-1") == []
    hub.app_stopped("ap-3", containers_left=0)  # nothing left to wait for: gone at once
    hub.publish([line("late", app="ap-3")])
    assert hub.recent("ap-3") == []


def test_the_shipper_says_when_every_line_is_handed_over() -> None:
    async def main() -> list[bool]:
        shipper = LogShipper(send=lambda _: None)
        seen = [shipper.empty]
        shipper.add(line("last words"))
        seen.append(shipper.empty)
        waiting = asyncio.create_task(shipper.handed_over(3600))
        await asyncio.sleep(0)
        seen.append(waiting.done())
        assert texts(shipper.take_batch()) == ["last words"]
        await asyncio.wait_for(waiting, 30)  # woken by the batch (its own bound is an hour)
        seen.append(shipper.empty)
        return seen

    assert asyncio.run(main()) == [True, False, False, True]
