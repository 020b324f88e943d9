-- The notifier's sent-ledger: one row per notification event, so each sends one e-mail.
CREATE TABLE notifications_sent (
    event_id          uuid        PRIMARY KEY,
    event_type        text        NOT NULL,
    company_id        text        NOT NULL,
    recipient         text        NOT NULL,
    message_id        text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts          integer     NOT NULL DEFAULT 1,
    error             text,
    source_topic      text        NOT NULL,
    source_partition  integer     NOT NULL,
    source_offset     bigint      NOT NULL,
    first_attempt_at  timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz
);
CREATE INDEX notifications_sent_status ON notifications_sent (status, updated_at);
