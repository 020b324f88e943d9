-- The read model: the current state of every item, and its append-only history.
CREATE TABLE items (
    company_id          text        NOT NULL,
    item_type           text        NOT NULL,
    item_id             text        NOT NULL,
    status              text        NOT NULL,
    submission_version  integer     NOT NULL DEFAULT 0,
    number              text,
    title               text,
    amount              numeric(19, 4),
    project_id          text,
    project_name        text,
    sent_by_email       text,
    sent_by_name        text,
    sent_at             timestamptz,
    decided_by_email    text,
    decided_at          timestamptz,
    reason              text,
    erp_reference       text,
    last_error          text,
    updated_at          timestamptz NOT NULL,
    last_event_id       uuid        NOT NULL,
    PRIMARY KEY (company_id, item_type, item_id)
);
CREATE INDEX items_view ON items (company_id, status, item_type);

CREATE TABLE item_history (
    event_id            uuid        PRIMARY KEY,
    company_id          text        NOT NULL,
    item_type           text        NOT NULL,
    item_id             text        NOT NULL,
    status              text        NOT NULL,
    previous_status     text,
    submission_version  integer     NOT NULL,
    actor_user_id       text        NOT NULL,
    actor_email         text        NOT NULL,
    actor_name          text,
    reason              text,
    reasons             jsonb       NOT NULL DEFAULT '[]',
    erp_reference       text,
    occurred_at         timestamptz NOT NULL,
    correlation_id      text,
    source_topic        text        NOT NULL,
    source_partition    integer     NOT NULL,
    source_offset       bigint      NOT NULL
);
CREATE INDEX item_history_item ON item_history (company_id, item_type, item_id, occurred_at);
