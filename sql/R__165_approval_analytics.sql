-- Orderly: approval analytics for BI tools (issue #5). Plain SQL over the tables: functions
-- called by a view are checked against its reader, and orderly_bi may execute none.
-- CREATE OR REPLACE VIEW can only append columns: add a DROP VIEW IF EXISTS above a view whose
-- columns are renamed, reordered or dropped.

CREATE OR REPLACE VIEW analytics.approval_turnaround AS
SELECT r.id                                                          AS rule_id,
       r.name                                                        AS rule_name,
       a.step_no,
       a.role,
       count(*)                                                      AS decided,
       count(*) FILTER (WHERE a.status = 'approved')                 AS approved,
       count(*) FILTER (WHERE a.status = 'rejected')                 AS rejected,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.decided_at - a.pending_since) AS median_time_to_decide,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY a.decided_at - a.pending_since) AS p90_time_to_decide,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.decided_at - a.pending_since))::numeric, 1)
                                                                     AS median_seconds,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM a.decided_at - a.pending_since))::numeric, 1)
                                                                     AS p90_seconds,
       round(count(*) FILTER (WHERE a.status = 'rejected')::numeric / count(*), 4) AS rejection_rate,
       count(*) FILTER (WHERE a.escalated_at IS NOT NULL)            AS escalated,
       count(*) FILTER (WHERE a.via_delegation_id IS NOT NULL)       AS via_delegation
FROM orderly.order_approvals a
JOIN orderly.approval_rules r ON r.id = a.rule_id
WHERE a.status IN ('approved', 'rejected')
GROUP BY r.id, r.name, a.step_no, a.role;

COMMENT ON VIEW analytics.approval_turnaround IS 'How fast each approval step is decided: one row per rule, step and role, over every decided step of every round';
COMMENT ON COLUMN analytics.approval_turnaround.rule_id IS 'Approval rule that routed the orders';
COMMENT ON COLUMN analytics.approval_turnaround.rule_name IS 'Name of the approval rule (as it is now)';
COMMENT ON COLUMN analytics.approval_turnaround.step_no IS 'Step of the chain (1 = first)';
COMMENT ON COLUMN analytics.approval_turnaround.role IS 'Role that had to decide the step';
COMMENT ON COLUMN analytics.approval_turnaround.decided IS 'Steps decided (approved + rejected)';
COMMENT ON COLUMN analytics.approval_turnaround.approved IS 'Steps approved';
COMMENT ON COLUMN analytics.approval_turnaround.rejected IS 'Steps rejected';
COMMENT ON COLUMN analytics.approval_turnaround.median_time_to_decide IS 'Median time from the step becoming pending to its decision';
COMMENT ON COLUMN analytics.approval_turnaround.p90_time_to_decide IS '90th percentile of the time from pending to decision';
COMMENT ON COLUMN analytics.approval_turnaround.median_seconds IS 'median_time_to_decide in seconds';
COMMENT ON COLUMN analytics.approval_turnaround.p90_seconds IS 'p90_time_to_decide in seconds';
COMMENT ON COLUMN analytics.approval_turnaround.rejection_rate IS 'rejected / decided, from 0 to 1';
COMMENT ON COLUMN analytics.approval_turnaround.escalated IS 'Decided steps that had escalated first';
COMMENT ON COLUMN analytics.approval_turnaround.via_delegation IS 'Decided steps decided by a delegate';

CREATE OR REPLACE VIEW analytics.pending_approvals AS
SELECT o.id                               AS order_id,
       c.name                             AS customer_name,
       o.type                             AS order_type,
       -- A change's round is checked against the total the change would make.
       coalesce((SELECT ch.total_after FROM orderly.order_changes ch WHERE ch.id = a.change_id), o.total) AS total,
       o.currency,
       a.round,
       a.step_no,
       a.steps,
       a.role,
       a.escalation_role,
       (SELECT r.name FROM orderly.approval_rules r WHERE r.id = a.rule_id) AS rule_name,
       a.pending_since,
       now() - a.pending_since            AS age,
       a.due_at,
       a.due_at <= now()                  AS overdue,
       a.reminders_sent,
       a.last_reminded_at,
       a.escalated_at IS NOT NULL         AS escalated,
       a.escalated_at,
       a.note
FROM orderly.order_approvals a
JOIN orderly.orders o ON o.id = a.order_id
JOIN orderly.customers c ON c.id = o.customer_id
WHERE a.status = 'pending';

COMMENT ON VIEW analytics.pending_approvals IS 'Approval steps waiting for a decision now: one row per order, its current step';
COMMENT ON COLUMN analytics.pending_approvals.order_id IS 'Order number';
COMMENT ON COLUMN analytics.pending_approvals.customer_name IS 'Customer of the order';
COMMENT ON COLUMN analytics.pending_approvals.order_type IS 'standard, custom or strategic';
COMMENT ON COLUMN analytics.pending_approvals.total IS 'Order total (with tax) that the approval limits are checked against: for a change''s round, the total after the change';
COMMENT ON COLUMN analytics.pending_approvals.currency IS 'Currency of the total';
COMMENT ON COLUMN analytics.pending_approvals.round IS 'Approval round (a resubmission after a rejection starts the next)';
COMMENT ON COLUMN analytics.pending_approvals.step_no IS 'Current step of the chain';
COMMENT ON COLUMN analytics.pending_approvals.steps IS 'Number of steps in the chain';
COMMENT ON COLUMN analytics.pending_approvals.role IS 'Role that must decide the step';
COMMENT ON COLUMN analytics.pending_approvals.escalation_role IS 'Role told (and allowed to decide) once the step escalates';
COMMENT ON COLUMN analytics.pending_approvals.rule_name IS 'Approval rule that routed the order';
COMMENT ON COLUMN analytics.pending_approvals.pending_since IS 'When the step became the current one';
COMMENT ON COLUMN analytics.pending_approvals.age IS 'How long the step has been waiting';
COMMENT ON COLUMN analytics.pending_approvals.due_at IS 'When the step is due; reminders start then';
COMMENT ON COLUMN analytics.pending_approvals.overdue IS 'True once due_at has passed';
COMMENT ON COLUMN analytics.pending_approvals.reminders_sent IS 'Reminders sent for this step';
COMMENT ON COLUMN analytics.pending_approvals.last_reminded_at IS 'When the last reminder was sent';
COMMENT ON COLUMN analytics.pending_approvals.escalated IS 'True once the step has escalated to its escalation role';
COMMENT ON COLUMN analytics.pending_approvals.escalated_at IS 'When the step escalated';
COMMENT ON COLUMN analytics.pending_approvals.note IS 'Why the step may have been stuck when it opened (e.g. no approval limit covered the order); admin.pending_approvals says who may decide it now';
