"""The tables a seed writes, each declared once: its name and the columns it fills.

``tenant_id`` comes first in every row (``Ctx.table`` adds it); the columns here are
the rest, in the order the generators build their rows. :data:`ALL` is the order
COPY writes them in: parents before children.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    """One table of the seed: ``name`` and the columns a row gives after ``tenant_id``."""

    name: str
    columns: tuple[str, ...]


USERS = TableSpec(
    "users", ("id", "email", "display_name", "is_active", "last_login_at", "created_at")
)
ROLES = TableSpec("roles", ("id", "name", "description", "is_system"))
USER_ROLES = TableSpec("user_roles", ("user_id", "role_id"))
ROLE_PERMISSIONS = TableSpec("role_permissions", ("role_id", "permission_id"))
CONTACTS = TableSpec(
    "contacts",
    (
        "id",
        "status",
        "first_name",
        "last_name",
        "email",
        "phone",
        "graduation_year",
        "degree",
        "external_id",
        "source",
        "custom_attributes",
        "last_activity_at",
        "created_at",
        "updated_at",
    ),
)
CONTACT_TAGS = TableSpec("contact_tags", ("contact_id", "tag"))
CHANNEL_IDENTIFIERS = TableSpec(
    "channel_identifiers", ("id", "contact_id", "channel", "value", "is_primary", "verified_at")
)
CONTACT_ATTRIBUTES = TableSpec("contact_attributes", ("id", "contact_id", "key", "value"))
CONTACT_CONSENTS = TableSpec(
    "contact_consents",
    ("id", "contact_id", "channel", "purpose", "status", "source", "granted_at", "revoked_at"),
)
CONTACT_TIMELINE_EVENTS = TableSpec(
    "contact_timeline_events", ("id", "contact_id", "event_type", "occurred_at", "payload")
)
SEGMENTS = TableSpec(
    "segments",
    ("id", "name", "description", "segment_type", "rules", "member_count", "last_computed_at"),
)
SEGMENT_MEMBERS = TableSpec("segment_members", ("segment_id", "contact_id", "added_at", "source"))
TEMPLATES = TableSpec("templates", ("id", "name", "description", "channel"))
TEMPLATE_VERSIONS = TableSpec(
    "template_versions",
    (
        "id",
        "template_id",
        "version",
        "subject",
        "body",
        "body_format",
        "variables",
        "created_by",
        "published_at",
    ),
)
CAMPAIGNS = TableSpec(
    "campaigns",
    (
        "id",
        "name",
        "status",
        "channel",
        "segment_id",
        "template_id",
        "scheduled_at",
        "started_at",
        "completed_at",
        "created_by",
        "settings",
    ),
)
CAMPAIGN_RUNS = TableSpec(
    "campaign_runs",
    (
        "id",
        "campaign_id",
        "run_number",
        "status",
        "started_at",
        "finished_at",
        "total_count",
        "sent_count",
        "delivered_count",
        "failed_count",
        "opened_count",
        "clicked_count",
    ),
)
CAMPAIGN_MESSAGES = TableSpec(
    "campaign_messages",
    (
        "id",
        "campaign_id",
        "campaign_run_id",
        "contact_id",
        "channel",
        "status",
        "recipient",
        "provider_message_id",
        "sent_at",
        "delivered_at",
        "opened_at",
        "clicked_at",
        "failed_at",
        "error",
    ),
)
INBOX_THREADS = TableSpec(
    "inbox_threads",
    (
        "id",
        "contact_id",
        "channel",
        "status",
        "subject",
        "assigned_user_id",
        "last_message_at",
        "snoozed_until",
        "closed_at",
        "created_at",
    ),
)
INBOX_MESSAGES = TableSpec(
    "inbox_messages",
    (
        "id",
        "thread_id",
        "direction",
        "channel",
        "body",
        "attachments",
        "sender_user_id",
        "provider_message_id",
        "dispatch_status",
        "sent_at",
    ),
)
INBOX_ACTIVITIES = TableSpec(
    "inbox_activities",
    ("id", "thread_id", "actor_user_id", "activity_type", "payload", "occurred_at"),
)
WORKFLOWS = TableSpec(
    "workflows",
    (
        "id",
        "name",
        "status",
        "version",
        "trigger_definition",
        "graph",
        "activated_at",
        "created_by",
    ),
)
WORKFLOW_RUNS = TableSpec(
    "workflow_runs",
    (
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
    ),
)
WORKFLOW_NODE_RUNS = TableSpec(
    "workflow_node_runs",
    (
        "id",
        "workflow_id",
        "workflow_run_id",
        "node_key",
        "status",
        "attempts",
        "started_at",
        "finished_at",
        "error",
    ),
)
SEQUENCES = TableSpec("sequences", ("id", "name", "status", "exit_on_reply", "created_by"))
SEQUENCE_STEPS = TableSpec(
    "sequence_steps",
    ("id", "sequence_id", "step_number", "name", "delay", "channel", "template_id"),
)
SEQUENCE_RUNS = TableSpec(
    "sequence_runs",
    (
        "id",
        "sequence_id",
        "contact_id",
        "status",
        "current_step",
        "next_run_at",
        "enrolled_at",
        "finished_at",
        "exit_reason",
    ),
)
PIPELINE_JOBS = TableSpec(
    "pipeline_jobs",
    (
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
    ),
)
PIPELINE_FAILURES = TableSpec(
    "pipeline_failures",
    ("id", "job_id", "attempt", "error", "error_details", "failed_at", "worker"),
)

# Parents before children: the order COPY writes them in.
ALL: tuple[TableSpec, ...] = (
    USERS,
    ROLES,
    USER_ROLES,
    ROLE_PERMISSIONS,
    CONTACTS,
    CONTACT_TAGS,
    CHANNEL_IDENTIFIERS,
    CONTACT_ATTRIBUTES,
    CONTACT_CONSENTS,
    CONTACT_TIMELINE_EVENTS,
    SEGMENTS,
    SEGMENT_MEMBERS,
    TEMPLATES,
    TEMPLATE_VERSIONS,
    CAMPAIGNS,
    CAMPAIGN_RUNS,
    CAMPAIGN_MESSAGES,
    INBOX_THREADS,
    INBOX_MESSAGES,
    INBOX_ACTIVITIES,
    WORKFLOWS,
    WORKFLOW_RUNS,
    WORKFLOW_NODE_RUNS,
    SEQUENCES,
    SEQUENCE_STEPS,
    SEQUENCE_RUNS,
    PIPELINE_JOBS,
    PIPELINE_FAILURES,
)
NAMES = tuple(spec.name for spec in ALL)
