"""Workflows and their runs, drip sequences and enrolments, background jobs in every status."""

from __future__ import annotations

import datetime as dt
import itertools

from alumdb.seed import tables
from alumdb.seed.gen import Ctx, js

WORKFLOW_STATUSES = ("active", "active", "paused", "draft", "archived", "active")
RUN_STATUSES = ("pending", "running", "waiting", "completed", "failed", "cancelled")
RUN_WEIGHTS = (15, 10, 25, 35, 10, 5)
NODES = ("start", "wait_3d", "send_email", "branch_opened", "send_sms", "update_contact")
SEQUENCE_STATUSES = ("active", "active", "paused", "draft")
ENROLMENT_STATUSES = ("active", "paused", "completed", "exited", "failed")
ENROLMENT_WEIGHTS = (50, 10, 20, 15, 5)
JOB_STATUSES = ("pending", "processing", "completed", "failed", "retrying")
JOB_WEIGHTS = (20, 7, 50, 15, 8)
QUEUES = {
    "default": ("contacts.import_row", "segments.recompute"),
    "email": ("campaigns.send_run", "inbox.send_reply"),
    "sms": ("campaigns.send_run", "sequences.send_step"),
    "webhooks": ("providers.delivery_event",),
}


def workflows(ctx: Ctx, count: int, runs: int) -> None:
    rows = ctx.table(tables.WORKFLOWS)
    live = []
    graph = js(
        {
            "nodes": [{"key": k} for k in NODES],
            "edges": [[a, b] for a, b in itertools.pairwise(NODES)],
        }
    )
    for i in range(count):
        wid, status = ctx.uid(), WORKFLOW_STATUSES[i % len(WORKFLOW_STATUSES)]
        trigger = None if status == "draft" else js({"event": "contact.created"})
        version = ctx.rng.randint(1, 4)
        activated = ctx.ago(300, 30) if status in {"active", "paused"} else None
        rows.append(
            (
                ctx.tenant,
                wid,
                f"Journey {i + 1}",
                status,
                version,
                trigger,
                graph,
                activated,
                ctx.pick(ctx.refs["users"]),
            )
        )
        if status != "draft":
            live.append((wid, version))
    ctx.table(tables.WORKFLOW_RUNS)
    ctx.table(tables.WORKFLOW_NODE_RUNS)
    for _ in range(runs if live else 0):
        _workflow_run(ctx, *ctx.pick(live))


def _workflow_run(ctx: Ctx, workflow: object, version: int) -> None:
    status = ctx.weighted(RUN_STATUSES, RUN_WEIGHTS)
    rid = ctx.uid()
    contact = ctx.pick(ctx.refs["contacts"])[0] if ctx.chance(0.9) else None
    started = ctx.ago(90, 1) if status != "pending" else None
    due = ctx.later(ctx.anchor, 3, -1) if status in {"pending", "waiting"} else None
    terminal = started is not None and status in {"completed", "failed", "cancelled"}
    finished = ctx.later(started, 1) if terminal and started else None
    error = "provider timeout" if status == "failed" else None
    steps = ctx.rng.randint(1, 3) if started else 0
    ctx.add(
        tables.WORKFLOW_RUNS,
        rid,
        workflow,
        ctx.rng.randint(1, version),
        contact,
        status,
        NODES[steps],
        due,
        js({"attempt": 1}),
        started,
        finished,
        error,
    )
    at = started
    for n in range(steps):
        assert at is not None  # noqa: S101 - steps only for started runs
        last = n == steps - 1
        node_status = "completed"
        if last and status in {"running", "failed"}:
            node_status = "running" if status == "running" else "failed"
        end = ctx.later(at, 0.5) if node_status != "running" else None
        ctx.add(
            tables.WORKFLOW_NODE_RUNS,
            ctx.uid(),
            workflow,
            rid,
            NODES[n],
            node_status,
            1,
            at,
            end,
            error if node_status == "failed" else None,
        )
        at = end or at


def sequences(ctx: Ctx, count: int, runs: int) -> None:
    rows = ctx.table(tables.SEQUENCES)
    ctx.table(tables.SEQUENCE_STEPS)
    ctx.table(tables.SEQUENCE_RUNS)
    contacts = ctx.refs["contacts"]
    for i in range(count):
        sid, status = ctx.uid(), SEQUENCE_STATUSES[i % len(SEQUENCE_STATUSES)]
        rows.append(
            (ctx.tenant, sid, f"Drip {i + 1}", status, ctx.chance(0.8), ctx.pick(ctx.refs["users"]))
        )
        for step in range(1, 4):
            template, channel = ctx.pick(ctx.refs["templates"])
            ctx.add(
                tables.SEQUENCE_STEPS,
                ctx.uid(),
                sid,
                step,
                f"Step {step}",
                dt.timedelta(days=(step - 1) * 3),
                channel,
                template,
            )
        if status == "draft":
            continue
        # One live enrolment per contact and sequence: distinct contacts per sequence.
        picked = ctx.rng.sample(range(len(contacts)), min(len(contacts), runs // max(1, count)))
        for m in picked:
            _enrolment(ctx, sid, contacts[m][0])


def _enrolment(ctx: Ctx, sequence: object, contact: object) -> None:
    status = ctx.weighted(ENROLMENT_STATUSES, ENROLMENT_WEIGHTS)
    enrolled = ctx.ago(60, 1)
    due = ctx.later(ctx.anchor, 3, -3) if status == "active" else None
    finished = (
        ctx.between(enrolled, ctx.anchor) if status in {"completed", "exited", "failed"} else None
    )
    reason = ctx.pick(("replied", "unsubscribed", "removed")) if status == "exited" else None
    step = 4 if status == "completed" else ctx.rng.randint(1, 3)
    ctx.add(
        tables.SEQUENCE_RUNS,
        ctx.uid(),
        sequence,
        contact,
        status,
        step,
        due,
        enrolled,
        finished,
        reason,
    )


def jobs(ctx: Ctx, count: int) -> None:
    ctx.table(tables.PIPELINE_JOBS)
    ctx.table(tables.PIPELINE_FAILURES)
    for i in range(max(count, len(JOB_STATUSES))):
        # The first five cover every status, whatever the weights draw.
        status = (
            JOB_STATUSES[i] if i < len(JOB_STATUSES) else ctx.weighted(JOB_STATUSES, JOB_WEIGHTS)
        )
        _job(ctx, status)


def _job(ctx: Ctx, status: str) -> None:
    queue = ctx.pick(tuple(QUEUES))
    jid, created = ctx.uid(), ctx.ago(30)
    run_at = ctx.later(ctx.anchor, 1, -2) if status in {"pending", "retrying"} else created
    attempts = {
        "pending": 0,
        "processing": ctx.rng.randint(1, 5),
        "completed": ctx.rng.randint(1, 2),
        "failed": 5,
        "retrying": ctx.rng.randint(1, 4),
    }[status]
    locked = ctx.later(run_at, 0.01) if status == "processing" else None
    worker = f"worker-{ctx.rng.randint(1, 8)}"
    failures = attempts if status in {"failed", "retrying"} else max(0, attempts - 1)
    error = "SMTP 421 try again later" if failures else None
    dedup = ctx.uid().hex if status in {"pending", "retrying"} and ctx.chance(0.2) else None
    done = ctx.later(run_at, 0.01) if status == "completed" else None
    failed_at = ctx.later(run_at, 0.1) if status == "failed" else None
    ctx.add(
        tables.PIPELINE_JOBS,
        jid,
        queue,
        ctx.pick(QUEUES[queue]),
        js({"seed": True}),
        status,
        ctx.pick((0, 0, 0, -1, 5)),
        run_at,
        attempts,
        5,
        locked,
        worker if locked else None,
        error,
        dedup,
        done,
        failed_at,
    )
    for attempt in range(1, failures + 1):
        ctx.add(
            tables.PIPELINE_FAILURES,
            ctx.uid(),
            jid,
            attempt,
            "SMTP 421 try again later",
            js({"exception": "SMTPServerError"}),
            ctx.later(created, 1),
            worker,
        )
