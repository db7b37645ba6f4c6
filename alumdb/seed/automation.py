"""Workflows and their runs, drip sequences and enrolments, background jobs in every status."""

from __future__ import annotations

import datetime as dt
import itertools

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

WORKFLOWS_COLUMNS = (
    "id",
    "name",
    "status",
    "version",
    "trigger_definition",
    "graph",
    "activated_at",
    "created_by",
)
WORKFLOW_RUNS_COLUMNS = (
    "id",
    "workflow_id",
    "workflow_version",
    "contact_id",
    "status",
    "current_node",
    "next_run_at",
    "context",
    "started_at",
    "finished_at",
    "error",
)
WORKFLOW_NODE_RUNS_COLUMNS = (
    "id",
    "workflow_id",
    "workflow_run_id",
    "node_key",
    "status",
    "attempts",
    "started_at",
    "finished_at",
    "error",
)


def workflows(ctx: Ctx, count: int, runs: int) -> None:
    rows = ctx.table("workflows", *WORKFLOWS_COLUMNS)
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
    ctx.table("workflow_runs", *WORKFLOW_RUNS_COLUMNS)
    ctx.table("workflow_node_runs", *WORKFLOW_NODE_RUNS_COLUMNS)
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
        "workflow_runs",
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
            "workflow_node_runs",
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
    rows = ctx.table("sequences", "id", "name", "status", "exit_on_reply", "created_by")
    ctx.table(
        "sequence_steps",
        "id",
        "sequence_id",
        "step_number",
        "name",
        "delay",
        "channel",
        "template_id",
    )
    ctx.table(
        "sequence_runs",
        "id",
        "sequence_id",
        "contact_id",
        "status",
        "current_step",
        "next_run_at",
        "enrolled_at",
        "finished_at",
        "exit_reason",
    )
    contacts = ctx.refs["contacts"]
    for i in range(count):
        sid, status = ctx.uid(), SEQUENCE_STATUSES[i % len(SEQUENCE_STATUSES)]
        rows.append(
            (ctx.tenant, sid, f"Drip {i + 1}", status, ctx.chance(0.8), ctx.pick(ctx.refs["users"]))
        )
        for step in range(1, 4):
            template, channel = ctx.pick(ctx.refs["templates"])
            ctx.add(
                "sequence_steps",
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
        "sequence_runs", ctx.uid(), sequence, contact, status, step, due, enrolled, finished, reason
    )


def jobs(ctx: Ctx, count: int) -> None:
    ctx.table(
        "pipeline_jobs",
        "id",
        "queue",
        "task_name",
        "payload",
        "status",
        "priority",
        "run_at",
        "attempts",
        "max_attempts",
        "locked_at",
        "locked_by",
        "last_error",
        "dedup_key",
        "completed_at",
        "failed_at",
    )
    ctx.table(
        "pipeline_failures",
        "id",
        "job_id",
        "attempt",
        "error",
        "error_details",
        "failed_at",
        "worker",
    )
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
        "pipeline_jobs",
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
            "pipeline_failures",
            ctx.uid(),
            jid,
            attempt,
            "SMTP 421 try again later",
            js({"exception": "SMTPServerError"}),
            ctx.later(created, 1),
            worker,
        )
