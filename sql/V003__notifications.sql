-- Orderly: durable notifications (DESIGN.md §5). Runs as orderly_owner.
--
-- A notification is written in the same transaction as the change it reports, so it exists if
-- and only if that change committed; the NOTIFY that follows is only a wake-up call. Rows are
-- written by api.notify (which also keeps ids in commit order, see R__050_notifications.sql)
-- and never updated: whether a user has read one is kept per user in notification_reads, since
-- one row addressed to a role is read by each of its members on their own.

CREATE TABLE orderly.notifications (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A role is named rather than expanded into one row per member: who receives it is decided
    -- by who holds the role when they read or are connected, not when it was sent.
    recipient_user_id bigint REFERENCES orderly.users (id) ON DELETE CASCADE,
    recipient_role    text REFERENCES orderly.roles (name) ON UPDATE CASCADE ON DELETE CASCADE,
    -- Written by the server on the wire as ">kind {json}", so it must be one bare token.
    kind              text NOT NULL
                      CONSTRAINT notifications_kind_format
                      CHECK (kind ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$' AND length(kind) <= 64),
    -- Bounded so that a pushed event always fits well inside the protocol's default 64 KiB line.
    payload           jsonb NOT NULL DEFAULT '{}'
                      CONSTRAINT notifications_payload_object
                      CHECK (jsonb_typeof(payload) = 'object' AND octet_length(payload::text) <= 32768),
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text NOT NULL DEFAULT session_user,  -- the login, even inside SECURITY DEFINER
    CONSTRAINT notifications_one_recipient CHECK (num_nonnulls(recipient_user_id, recipient_role) = 1)
);

-- Inbox reads walk these newest first; "catch-up by id" (events_since) is the primary key.
CREATE INDEX notifications_recipient_user_idx ON orderly.notifications (recipient_user_id, id)
    WHERE recipient_user_id IS NOT NULL;
CREATE INDEX notifications_recipient_role_idx ON orderly.notifications (recipient_role, id)
    WHERE recipient_role IS NOT NULL;

COMMENT ON TABLE orderly.notifications IS 'Events for a user or for every holder of a role; pushed live, read later with INBOX';

CREATE TABLE orderly.notification_reads (
    notification_id bigint NOT NULL REFERENCES orderly.notifications (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES orderly.users (id) ON DELETE CASCADE,
    read_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_reads_pkey PRIMARY KEY (notification_id, user_id)
);

-- For deleting a user (the foreign key) without scanning every read mark.
CREATE INDEX notification_reads_user_idx ON orderly.notification_reads (user_id);

COMMENT ON TABLE orderly.notification_reads IS 'Which user has acknowledged which notification (one row per reader)';
