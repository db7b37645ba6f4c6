"""The unified inbox: threads with a contact, their messages and activities."""

from __future__ import annotations

import datetime as dt

from alumdb.seed import tables
from alumdb.seed.gen import Ctx, js

THREAD_STATUSES = ("open", "closed", "pending", "snoozed")
THREAD_WEIGHTS = (40, 35, 15, 10)
OUTBOUND_STATUSES = ("sent", "delivered", "opened", "failed")


def threads(ctx: Ctx, count: int) -> None:
    rows = ctx.table(tables.INBOX_THREADS)
    ctx.table(tables.INBOX_MESSAGES)
    ctx.table(tables.INBOX_ACTIVITIES)
    contacts, users = ctx.refs["contacts"], ctx.refs["users"]
    for _ in range(count):
        cid, email, phone, _created = ctx.pick(contacts)
        channel = "email" if email and (not phone or ctx.chance(0.7)) else "sms"
        status = ctx.weighted(THREAD_STATUSES, THREAD_WEIGHTS)
        tid, opened = ctx.uid(), ctx.ago(180)
        assigned = ctx.pick(users) if ctx.chance(0.7) else None
        last = _messages(ctx, tid, channel, opened)
        snoozed = ctx.later(ctx.anchor, 5, -2) if status == "snoozed" else None
        closed = ctx.later(last, 3) if status == "closed" else None
        subject = ctx.sentence()[:80] if channel == "email" else None
        rows.append(
            (
                ctx.tenant,
                tid,
                cid,
                channel,
                status,
                subject,
                assigned,
                last,
                snoozed,
                closed,
                opened,
            )
        )
        for _ in range(ctx.rng.choice((0, 1, 1, 2))):
            kind = ctx.pick(("assigned", "status_changed", "note"))
            payload = {"note": ctx.sentence()} if kind == "note" else {"by": "seed"}
            actor = ctx.pick(users) if ctx.chance(0.8) else None
            ctx.add(
                tables.INBOX_ACTIVITIES,
                ctx.uid(),
                tid,
                actor,
                kind,
                js(payload),
                ctx.between(opened, last),
            )


def _messages(ctx: Ctx, thread: object, channel: str, at: dt.datetime) -> dt.datetime:
    """A thread's messages (inbound first, mostly); returns the last one's time."""
    sent = at
    for n in range(ctx.rng.randint(1, 5)):
        inbound = (n % 2 == 0) == ctx.chance(0.8)
        sent = ctx.later(sent, 2) if n else sent
        attachments = js([{"name": "cv.pdf", "bytes": 48213}] if ctx.chance(0.05) else [])
        user = None if inbound or ctx.chance(0.3) else ctx.pick(ctx.refs["users"])
        status = None if inbound else ctx.pick(OUTBOUND_STATUSES)
        ctx.add(
            tables.INBOX_MESSAGES,
            ctx.uid(),
            thread,
            "inbound" if inbound else "outbound",
            channel,
            ctx.sentence(),
            attachments,
            user,
            ctx.uid().hex,
            status,
            sent,
        )
    return sent
