"""Staff (users, roles) and contacts with their addresses, attributes, consents and history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from alumdb.seed import tables
from alumdb.seed.gen import DOMAINS, Ctx, ascii_slug, js

PERMISSIONS = (
    "contacts.read",
    "contacts.write",
    "segments.read",
    "segments.write",
    "templates.write",
    "campaigns.read",
    "campaigns.send",
    "inbox.read",
    "inbox.reply",
    "workflows.write",
    "sequences.write",
    "settings.admin",
)
ROLES = {
    "Owner": PERMISSIONS,
    "Staff": tuple(p for p in PERMISSIONS if p != "settings.admin"),
    "Viewer": tuple(p for p in PERMISSIONS if p.endswith(".read")),
}
STATUSES = ("active", "inactive", "bounced", "unsubscribed", "archived")
STATUS_WEIGHTS = (85, 5, 3, 5, 2)
DEGREES = (
    "BA History",
    "BSc Physics",
    "MBA",
    "BEng Civil",
    "MA English",
    "PhD Chemistry",
    "BSc Nursing",
    "LLB",
    "BFA",
    "MSc Data Science",
)
SOURCES = ("sis_import", "signup_form", "event_checkin", "csv_import", "api")
TAGS = (
    "Class Agent",
    "Mentor",
    "Donor",
    "Volunteer",
    "Board",
    "Reunion 2025",
    "Parent",
    "Faculty",
    "Student Ambassador",
    "Lapsed Donor",
)
EVENT_TYPES = (
    "email.opened",
    "email.clicked",
    "campaign.sent",
    "inbox.replied",
    "event.attended",
    "donation.received",
    "profile.updated",
)


def users(ctx: Ctx, count: int, permission_ids: dict[str, object]) -> None:
    rows = ctx.table(tables.USERS)
    ids = []
    for i in range(count):
        first, last = ctx.pick(ctx.pools.first_names), ctx.pick(ctx.pools.last_names)
        uid = ctx.uid()
        email = f"{ascii_slug(first)}.{ascii_slug(last)}.{i}@staff.example.edu"
        login = ctx.ago(30) if ctx.chance(0.9) else None
        rows.append(
            (
                ctx.tenant,
                uid,
                email,
                f"{first} {last}",
                i == 0 or ctx.chance(0.9),
                login,
                ctx.ago(900, 60),
            )
        )
        ids.append(uid)
    ctx.refs["users"] = ids
    role_rows = ctx.table(tables.ROLES)
    ctx.table(tables.USER_ROLES)
    ctx.table(tables.ROLE_PERMISSIONS)
    role_ids = {}
    for name, keys in ROLES.items():
        rid = role_ids[name] = ctx.uid()
        role_rows.append((ctx.tenant, rid, name, f"{name} of the alumni office", True))
        for key in keys:
            ctx.add(tables.ROLE_PERMISSIONS, rid, permission_ids[key])
    for i, uid in enumerate(ids):
        ctx.add(
            tables.USER_ROLES, uid, role_ids["Owner" if i == 0 else ctx.pick(("Staff", "Viewer"))]
        )


def contacts(ctx: Ctx, count: int, detail: float = 1.0) -> None:
    """``count`` contacts; ``detail`` is the share that gets attributes, consents, events, tags."""
    rows = ctx.table(tables.CONTACTS)
    found = []
    for i in range(count):
        cid = ctx.uid()
        first, last = ctx.pick(ctx.pools.first_names), ctx.pick(ctx.pools.last_names)
        email = None
        if ctx.chance(0.95):
            email = f"{ascii_slug(first)}.{ascii_slug(last)}.{i}@{ctx.pick(DOMAINS)}"
        # +1 555 numbers are fictional; the index keeps them unique within the tenant.
        phone = f"+1555{i:07d}" if ctx.chance(0.6) else None
        year = ctx.rng.randint(1960, 2025) if ctx.chance(0.9) else None
        created = ctx.ago(1800, 1)
        custom = {"mentor": ctx.chance(0.1)} if ctx.chance(0.5) else {}
        rows.append(
            (
                ctx.tenant,
                cid,
                ctx.weighted(STATUSES, STATUS_WEIGHTS),
                first,
                last,
                email,
                phone,
                year,
                ctx.pick(DEGREES) if year else None,
                f"SIS-{i:07d}",
                ctx.pick(SOURCES),
                js(custom),
                ctx.between(created, ctx.anchor) if ctx.chance(0.7) else None,
                created,
                ctx.between(created, ctx.anchor),
            )
        )
        found.append((cid, email, phone, created))
    ctx.refs["contacts"] = found
    ctx.refs["detailed"] = [c for c in found if detail >= 1 or ctx.chance(detail)]
    _identifiers(ctx)
    _attributes(ctx)
    _consents(ctx)
    _history(ctx)


def _identifiers(ctx: Ctx) -> None:
    ctx.table(tables.CHANNEL_IDENTIFIERS)
    for i, (cid, email, phone, created) in enumerate(ctx.refs["contacts"]):
        verified = ctx.later(created, 30) if ctx.chance(0.6) else None
        if email:
            ctx.add(
                tables.CHANNEL_IDENTIFIERS, ctx.uid(), cid, "email", email.lower(), True, verified
            )
        if ctx.chance(0.1):
            work = f"c{i}@work.{ctx.pick(DOMAINS)}"
            ctx.add(tables.CHANNEL_IDENTIFIERS, ctx.uid(), cid, "email", work, email is None, None)
        if phone:
            ctx.add(tables.CHANNEL_IDENTIFIERS, ctx.uid(), cid, "sms", phone, True, verified)
            if ctx.chance(0.3):
                ctx.add(tables.CHANNEL_IDENTIFIERS, ctx.uid(), cid, "whatsapp", phone, True, None)
        if ctx.chance(0.1):
            token = f"{ctx.rng.getrandbits(256):064x}"
            ctx.add(tables.CHANNEL_IDENTIFIERS, ctx.uid(), cid, "push", token, True, None)


def _attributes(ctx: Ctx) -> None:
    ctx.table(tables.CONTACT_ATTRIBUTES)
    makers: dict[str, Callable[[], object]] = {
        "employer": lambda: ctx.pick(ctx.pools.companies),
        "job_title": lambda: ctx.pick(ctx.pools.jobs),
        "city": lambda: ctx.pick(ctx.pools.cities),
        "donor_tier": lambda: ctx.pick(("bronze", "silver", "gold", "platinum")),
        "is_volunteer": lambda: ctx.chance(0.2),
        "lifetime_giving": lambda: round(ctx.rng.expovariate(1 / 800), 2),
    }
    keys = tuple(makers)
    for cid, *_ in ctx.refs["detailed"]:
        for key in ctx.rng.sample(keys, ctx.rng.randint(1, 4)):
            ctx.add(tables.CONTACT_ATTRIBUTES, ctx.uid(), cid, key, js(makers[key]()))


def _consent(ctx: Ctx, cid: object, channel: str, purpose: str, since: dt.datetime) -> None:
    status = ctx.weighted(("granted", "revoked", "pending"), (80, 10, 10))
    granted = ctx.between(since, ctx.anchor) if status != "pending" else None
    revoked = ctx.between(granted, ctx.anchor) if status == "revoked" and granted else None
    source = ctx.pick(("signup_form", "import", "event_checkin"))
    if status == "revoked":
        source = ctx.pick(("reply_stop", "unsubscribe_link"))
    ctx.add(
        tables.CONTACT_CONSENTS, ctx.uid(), cid, channel, purpose, status, source, granted, revoked
    )


def _consents(ctx: Ctx) -> None:
    ctx.table(tables.CONTACT_CONSENTS)
    for cid, email, phone, created in ctx.refs["detailed"]:
        if email:
            _consent(ctx, cid, "email", "newsletter", created)
            if ctx.chance(0.4):
                _consent(ctx, cid, "email", "fundraising", created)
        if phone and ctx.chance(0.7):
            _consent(ctx, cid, "sms", "events", created)


def _history(ctx: Ctx) -> None:
    ctx.table(tables.CONTACT_TIMELINE_EVENTS)
    ctx.table(tables.CONTACT_TAGS)
    detailed = {c[0] for c in ctx.refs["detailed"]}
    for cid, _email, _phone, created in ctx.refs["contacts"]:
        ctx.add(
            tables.CONTACT_TIMELINE_EVENTS,
            ctx.uid(),
            cid,
            "contact.created",
            created,
            js({"source": "seed"}),
        )
        if cid not in detailed:
            continue
        for _ in range(ctx.rng.choice((0, 0, 1, 1, 2, 3))):
            kind = ctx.pick(EVENT_TYPES)
            payload = {"amount": ctx.rng.randint(10, 5000)} if kind == "donation.received" else {}
            ctx.add(
                tables.CONTACT_TIMELINE_EVENTS,
                ctx.uid(),
                cid,
                kind,
                ctx.between(created, ctx.anchor),
                js(payload),
            )
        for tag in ctx.rng.sample(TAGS, ctx.rng.choice((0, 0, 0, 1, 1, 2))):
            ctx.add(tables.CONTACT_TAGS, cid, tag)
