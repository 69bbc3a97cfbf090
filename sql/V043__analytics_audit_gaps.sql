-- Orderly: the analytics refresh no longer loses a change committed by a transaction that ran
-- longer than its margin. It read the audit rows of the last run's time window less a margin
-- (analytics_settings.refresh_margin, 10 minutes), and an audit row carries its transaction's
-- start time: an admin's psql transaction open for eleven minutes approved an order that never
-- reached the rollups. Now each run also reads every audit row after the last id it saw, and the
-- ids it found missing below that (held by a transaction still running) once they commit: the
-- gaps, each with a horizon as the event feed keeps them (R__050_notifications.sql).
ALTER TABLE orderly.analytics_state
    ADD COLUMN audit_seen_id bigint,
    ADD COLUMN audit_gaps jsonb NOT NULL DEFAULT '{}';

COMMENT ON COLUMN orderly.analytics_state.audit_seen_id IS
    'The newest audit row id the last incremental refresh saw (NULL: none yet: the next run starts at the newest)';
COMMENT ON COLUMN orderly.analytics_state.audit_gaps IS
    'Audit ids below audit_seen_id not yet committed at a refresh, each with the transaction id horizon after which it never fills (rolled back)';
