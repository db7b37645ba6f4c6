"""Segments and members, templates and versions, campaigns with their runs and messages."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

from alumdb.seed import tables
from alumdb.seed.gen import Ctx, js

SEGMENT_NAMES = (
    "Recent graduates",
    "Major donors",
    "Class agents",
    "Lapsed donors",
    "Event attendees",
    "Mentors",
    "Young alumni",
    "Parents",
    "Faculty and staff",
    "Reunion classes",
)
SEGMENT_TYPES = ("static", "dynamic", "event_driven")
MEMBER_SOURCE = {"static": ("manual", "import"), "dynamic": ("rule",), "event_driven": ("event",)}
TEMPLATE_CHANNELS = ("email", "email", "sms", "whatsapp", "email", "push", "sms", "email")
TEMPLATE_PURPOSES = (
    "Giving day",
    "Newsletter",
    "Event reminder",
    "Welcome",
    "Thank you",
    "Survey",
    "Reunion invite",
    "Mentoring call",
)
CAMPAIGN_STATUSES = (
    "completed",
    "running",
    "scheduled",
    "draft",
    "completed",
    "cancelled",
    "failed",
    "completed",
)
RUN_STATUS = {
    "completed": "completed",
    "running": "running",
    "cancelled": "cancelled",
    "failed": "failed",
}
MESSAGE_MIX = {
    "completed": (
        ("sent", "delivered", "opened", "clicked", "bounced", "failed"),
        (10, 40, 25, 10, 5, 5),
    ),
    "running": (("pending", "sent", "delivered", "opened", "failed"), (50, 20, 20, 5, 5)),
    "cancelled": (("pending", "sent", "failed"), (60, 30, 10)),
    "failed": (("failed", "sent"), (70, 30)),
}
COUNTED = {
    "delivered": "delivered_count",
    "opened": "opened_count",
    "clicked": "clicked_count",
    "failed": "failed_count",
    "bounced": "failed_count",
}


def _name(names: tuple[str, ...], i: int) -> str:
    return names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "")


def segments(ctx: Ctx, count: int, detail: float = 1.0) -> None:
    rows = ctx.table(tables.SEGMENTS)
    ctx.table(tables.SEGMENT_MEMBERS)
    contacts = ctx.refs["contacts"]
    ids = []
    for i in range(count):
        sid, kind = ctx.uid(), SEGMENT_TYPES[i % len(SEGMENT_TYPES)]
        rules = None
        if kind != "static":
            rules = js({"all": [{"field": "graduation_year", "op": ">=", "value": 1990 + i}]})
        k = max(1, int(len(contacts) * ctx.rng.uniform(0.03, 0.3) * max(detail, 0.2)))
        members = ctx.rng.sample(range(len(contacts)), min(k, len(contacts)))
        computed = ctx.ago(7)
        rows.append(
            (
                ctx.tenant,
                sid,
                _name(SEGMENT_NAMES, i),
                ctx.sentence(),
                kind,
                rules,
                len(members),
                computed,
            )
        )
        for m in members:
            cid, _e, _p, created = contacts[m]
            added = ctx.between(created, computed)
            ctx.add(tables.SEGMENT_MEMBERS, sid, cid, added, ctx.pick(MEMBER_SOURCE[kind]))
        ids.append(sid)
    ctx.refs["segments"] = ids


def templates(ctx: Ctx, count: int) -> None:
    rows = ctx.table(tables.TEMPLATES)
    ctx.table(tables.TEMPLATE_VERSIONS)
    found: list[tuple[uuid.UUID, str]] = []
    current: list[tuple[int, uuid.UUID, uuid.UUID]] = []
    for i in range(count):
        tid, channel = ctx.uid(), TEMPLATE_CHANNELS[i % len(TEMPLATE_CHANNELS)]
        rows.append(
            (ctx.tenant, tid, f"{_name(TEMPLATE_PURPOSES, i)} ({channel})", ctx.sentence(), channel)
        )
        versions = ctx.rng.randint(1, 3)
        published = 0 if i == count - 1 else versions - (1 if ctx.chance(0.3) else 0)
        at = ctx.ago(400, 100)
        for v in range(1, versions + 1):
            at = ctx.later(at, 30, 1)
            ctx.add(
                tables.TEMPLATE_VERSIONS,
                ctx.uid(),
                tid,
                v,
                f"{ctx.sentence()[:60]}" if channel == "email" else None,
                " ".join(ctx.sentence() for _ in range(3)) + " {{first_name}}",
                "html" if channel == "email" else "text",
                js(["first_name"]),
                ctx.pick(ctx.refs["users"]),
                at if v <= published else None,
            )
        if published:
            current.append((published, ctx.tenant, tid))
        found.append((tid, channel))
    ctx.refs["templates"] = found
    # templates.current_version points at template_versions, which point back: set after.
    ctx.refs.setdefault("after", []).append(
        ("UPDATE templates SET current_version = %s WHERE tenant_id = %s AND id = %s", current)
    )


def campaigns(ctx: Ctx, count: int, messages_per_contact: float) -> None:
    rows = ctx.table(tables.CAMPAIGNS)
    ctx.table(tables.CAMPAIGN_RUNS)
    ctx.table(tables.CAMPAIGN_MESSAGES)
    runs: list[tuple[uuid.UUID, uuid.UUID, str, str, dt.datetime]] = []
    for i in range(count):
        status = CAMPAIGN_STATUSES[i % len(CAMPAIGN_STATUSES)]
        cid = ctx.uid()
        tid, channel = ctx.pick(ctx.refs["templates"])
        segment = ctx.pick(ctx.refs["segments"]) if ctx.chance(0.9) else None
        started = ctx.ago(300, 2) if status not in {"draft", "scheduled"} else None
        scheduled = ctx.later(ctx.anchor, 30, 1) if status == "scheduled" else None
        done = ctx.later(started, 2) if status == "completed" and started else None
        rows.append(
            (
                ctx.tenant,
                cid,
                f"{_name(TEMPLATE_PURPOSES, i)} campaign {i + 1}",
                status,
                channel,
                segment,
                None if status == "draft" and i % 2 else tid,
                scheduled,
                started,
                done,
                ctx.pick(ctx.refs["users"]),
                js({"throttle_per_minute": 600}),
            )
        )
        if started is None:
            continue
        number = ctx.rng.randint(1, 3) if status in {"completed", "running"} else 1
        for n in range(1, number + 1):
            last = n == number
            run_status = RUN_STATUS[status] if last else "completed"
            at = started if n == 1 else ctx.later(started, 20 * n, 20 * (n - 1) + 1)
            runs.append((cid, ctx.uid(), channel, run_status, at))
            ctx.add(
                tables.CAMPAIGN_RUNS, runs[-1][1], cid, n, run_status, at, None, 0, 0, 0, 0, 0, 0
            )
    _messages(ctx, runs, messages_per_contact)


def _messages(
    ctx: Ctx, runs: list[tuple[uuid.UUID, uuid.UUID, str, str, dt.datetime]], per_contact: float
) -> None:
    contacts = ctx.refs["contacts"]
    budget = int(len(contacts) * per_contact)
    size = min(len(contacts), max(1, budget // max(1, len(runs))))
    run_rows = {row[1]: i for i, row in enumerate(ctx.tables[tables.CAMPAIGN_RUNS.name].rows)}
    for campaign, run, channel, run_status, started in runs:
        counts: Counter[str] = Counter()
        for m in ctx.rng.sample(range(len(contacts)), size):
            cid, email, phone, _created = contacts[m]
            address = email if channel == "email" else phone if channel != "push" else None
            statuses, weights = MESSAGE_MIX[run_status]
            status = ctx.weighted(statuses, weights) if address or channel == "push" else "failed"
            sent = ctx.later(started, 1) if status not in {"pending", "failed"} else None
            delivered = (
                ctx.later(sent, 0.01)
                if sent and status in {"delivered", "opened", "clicked"}
                else None
            )
            opened = ctx.later(delivered, 3) if delivered and status != "delivered" else None
            clicked = ctx.later(opened, 0.1) if opened and status == "clicked" else None
            failed = ctx.later(started, 1) if status in {"failed", "bounced"} else None
            error = None
            if failed:
                error = "no address for this channel" if not address else "550 mailbox unavailable"
            ctx.add(
                tables.CAMPAIGN_MESSAGES,
                ctx.uid(),
                campaign,
                run,
                cid,
                channel,
                status,
                address,
                ctx.uid().hex if sent else None,
                sent,
                delivered,
                opened,
                clicked,
                failed,
                error,
            )
            counts[status] += 1
        _count(ctx, run_rows[run], counts, size, started)


def _count(ctx: Ctx, index: int, counts: Counter[str], total: int, started: dt.datetime) -> None:
    """Fill a run's counters (and its end) from the messages it sent."""
    rows = ctx.tables[tables.CAMPAIGN_RUNS.name]
    row = list(rows.rows[index])
    columns = rows.columns
    row[columns.index("total_count")] = total
    for status, n in counts.items():
        if status in COUNTED:
            row[columns.index(COUNTED[status])] += n
    # Every message past 'pending' was sent, whatever happened next.
    row[columns.index("sent_count")] = total - counts["pending"] - counts["failed"]
    if row[columns.index("status")] != "running":
        row[columns.index("finished_at")] = ctx.later(started, 2, 0.1)
    rows.rows[index] = tuple(row)
