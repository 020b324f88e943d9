-- Deferrals of a notification (a 4xx to its RCPT TO or DATA), counted here so that the bound
-- on them (NOTIFIER_MAX_ATTEMPTS, NOTIFIER_DEFER_MAX_S) survives a restart of the notifier.
ALTER TABLE notifications_sent
    ADD COLUMN deferrals         integer     NOT NULL DEFAULT 0,
    ADD COLUMN first_deferred_at timestamptz;
