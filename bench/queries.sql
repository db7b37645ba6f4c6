-- ============================================================
-- The CRM's hot queries, as the application sends them.
-- ============================================================
-- One block per query: `-- name:` (an id), `-- expects:` (the index the plan should
-- use; `python -m bench.queries` checks it), optionally `-- role:` (how the CRM runs it
-- since 012: `app`, the default, is a login role granted alumoutreach_app with
-- app.tenant_id set to the tenant; `worker` is alumoutreach_worker with no tenant, for
-- the job dequeue only), then a comment on who sends it and the statement itself. %(name)s parameters are filled from the seeded data (a mid-sized
-- tenant, one of its contacts, threads, segments, campaigns). Written next to the
-- schema they exercise: a change to an index in migrations/ shows up here first.

-- name: job_dequeue
-- expects: idx_pipeline_jobs_dequeue
-- role: worker
-- Workers (011): the next jobs of a queue, across tenants, lowest priority value first
-- (012: with no tenant set, alumoutreach_worker sees every tenant's jobs).
WITH next AS (
    SELECT id, tenant_id FROM pipeline_jobs
    WHERE queue = %(queue)s AND status IN ('pending', 'retrying') AND run_at <= now()
    ORDER BY priority, run_at, id
    LIMIT 10
    FOR UPDATE SKIP LOCKED
)
UPDATE pipeline_jobs j
SET status = 'processing', locked_at = now(), locked_by = 'bench', attempts = j.attempts + 1
FROM next WHERE j.tenant_id = next.tenant_id AND j.id = next.id
RETURNING j.id;

-- name: inbox_open_threads
-- expects: idx_inbox_threads_status_last_message_at
-- The inbox view (008): a tenant's open threads, most recent activity first.
SELECT id, contact_id, channel, subject, last_message_at FROM inbox_threads
WHERE tenant_id = %(tenant_id)s AND status = 'open'
ORDER BY last_message_at DESC
LIMIT 50;

-- name: inbox_all_threads
-- expects: idx_inbox_threads_last_message_at
-- The inbox's "All" tab: every thread of a tenant, whatever its status, by last activity.
SELECT id, contact_id, channel, status, subject, last_message_at FROM inbox_threads
WHERE tenant_id = %(tenant_id)s
ORDER BY last_message_at DESC
LIMIT 50;

-- name: thread_messages
-- expects: idx_inbox_messages_thread_sent_at
-- Opening a thread: its messages in order.
SELECT id, direction, body, sent_at, dispatch_status FROM inbox_messages
WHERE tenant_id = %(tenant_id)s AND thread_id = %(thread_id)s
ORDER BY sent_at;

-- name: contact_by_email
-- expects: idx_contacts_email
-- Search box and imports: a contact by e-mail (citext: any case).
SELECT id, first_name, last_name, status FROM contacts
WHERE tenant_id = %(tenant_id)s AND email = %(email)s;

-- name: contact_by_phone
-- expects: idx_contacts_phone
-- Search box and imports: a contact by phone number.
SELECT id, first_name, last_name, status FROM contacts
WHERE tenant_id = %(tenant_id)s AND phone = %(phone)s;

-- name: contact_by_channel_identifier
-- expects: uq_channel_identifiers_channel_value
-- An inbound SMS or WhatsApp message: who sent it (004: the address book of every channel).
SELECT c.id, c.first_name, c.last_name FROM channel_identifiers ci
JOIN contacts c ON c.tenant_id = ci.tenant_id AND c.id = ci.contact_id
WHERE ci.tenant_id = %(tenant_id)s AND ci.channel IN ('sms', 'whatsapp') AND ci.value = %(phone)s;

-- name: contact_timeline
-- expects: idx_contact_timeline_events_contact_occurred_at
-- A contact's page: the latest events first.
SELECT event_type, occurred_at, payload FROM contact_timeline_events
WHERE tenant_id = %(tenant_id)s AND contact_id = %(contact_id)s
ORDER BY occurred_at DESC
LIMIT 50;

-- name: segment_members
-- expects: pk_segment_members
-- A segment's page: its members with their names, a page at a time.
SELECT c.id, c.first_name, c.last_name, c.email FROM segment_members sm
JOIN contacts c ON c.tenant_id = sm.tenant_id AND c.id = sm.contact_id
WHERE sm.tenant_id = %(tenant_id)s AND sm.segment_id = %(segment_id)s
ORDER BY sm.contact_id
LIMIT 100;

-- name: due_sequence_runs
-- expects: idx_sequence_runs_due
-- The sequence sender (010): enrolments whose next step is due. Since 012 only the owner
-- sees every tenant's runs: the CRM's roles see one tenant's (app.tenant_id).
SELECT tenant_id, id, sequence_id, contact_id, current_step FROM sequence_runs
WHERE status = 'active' AND next_run_at <= now()
ORDER BY next_run_at
LIMIT 100;

-- name: due_workflow_runs
-- expects: idx_workflow_runs_due
-- The workflow executor (009): runs waiting to run; one tenant's as the CRM (012).
SELECT tenant_id, id, workflow_id FROM workflow_runs
WHERE status IN ('pending', 'waiting') AND next_run_at <= now()
ORDER BY next_run_at
LIMIT 100;

-- name: campaign_messages_by_status
-- expects: idx_campaign_messages_campaign_run_status
-- A campaign's report: its failed and bounced messages.
SELECT id, contact_id, recipient, status, error FROM campaign_messages
WHERE tenant_id = %(tenant_id)s AND campaign_id = %(campaign_id)s
  AND status IN ('failed', 'bounced')
LIMIT 200;

-- name: campaign_status_counts
-- expects: idx_campaign_messages_campaign_run_status
-- A campaign's dashboard: messages per status.
SELECT status, count(*) FROM campaign_messages
WHERE tenant_id = %(tenant_id)s AND campaign_id = %(campaign_id)s
GROUP BY status;

-- name: snoozed_threads_to_wake
-- expects: idx_inbox_threads_snoozed_until
-- The job that reopens snoozed threads (008); one tenant's as the CRM (012).
SELECT tenant_id, id FROM inbox_threads
WHERE status = 'snoozed' AND snoozed_until <= now()
LIMIT 500;
