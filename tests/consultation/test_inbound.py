"""The record of what arrived: a redelivered message is seen, an outcome is kept."""

from __future__ import annotations

from consultation import inbound
from models import Channel, InboundRecord


async def test_a_message_is_recorded_once_and_a_redelivery_is_told_apart(db, clock):
    async with db.session() as session:
        first = await inbound.record(
            session=session, channel=Channel.EMAIL, external_id="<a@x>", detail={"kind": "reply"}
        )
        again = await inbound.record(session=session, channel=Channel.EMAIL, external_id="<a@x>")
        other_channel = await inbound.record(
            session=session, channel=Channel.TELEGRAM, external_id="<a@x>"
        )
    assert first is not None and first.status == inbound.RECEIVED
    assert again is None
    assert other_channel is not None


async def test_a_failure_is_not_overwritten_by_a_later_processed_mark(db, clock):
    async with db.session() as session:
        await inbound.record(
            session=session, channel=Channel.TELEGRAM, external_id="7", participant_id=None
        )
    async with db.session() as session:
        await inbound.mark(
            session=session,
            channel=Channel.TELEGRAM,
            external_id="7",
            status=inbound.FAILED,
            error="ValueError",
        )
    async with db.session() as session:
        await inbound.mark(
            session=session, channel=Channel.TELEGRAM, external_id="7", status=inbound.PROCESSED
        )
    async with db.session() as session:
        record = await inbound.find(session=session, channel=Channel.TELEGRAM, external_id="7")
    assert record.status == inbound.FAILED
    assert record.detail == {"error": "ValueError"}
    assert record.processed_at == clock.now()


def test_finish_keeps_the_details_it_is_given_and_drops_empty_ones():
    record = InboundRecord(channel="email", external_id="<b@x>", detail={"kind": "reply"})
    inbound.finish(record, "rejected", participant_id=None, reason="unknown key", permanent=None)
    assert (record.status, record.detail) == (
        "rejected",
        {"kind": "reply", "reason": "unknown key"},
    )
