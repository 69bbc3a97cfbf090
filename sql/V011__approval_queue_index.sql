-- Orderly: APPROVAL QUEUE reads the pending steps of the actor's roles, oldest first.
CREATE INDEX order_approvals_pending_role_idx ON orderly.order_approvals (role, pending_since, id) WHERE status = 'pending';
