-- What the console shows beside the status: every submission's snapshot, every decision's
-- fields, every refusal of an item's input. Written by the `catalog` worker from
-- erp.submissions, erp.decisions and erp.dead-letters; one row per event (by event_id).
-- `status_event_id` is the id of the status change the processor derives from the event
-- (pipeline.rules.derive.derived_id(event, "status")): joined with item_history.event_id it
-- says which submission version a snapshot is, and which history entry a decision made.
CREATE TABLE item_submissions (
    event_id            uuid        PRIMARY KEY,
    status_event_id     uuid        NOT NULL,
    company_id          text        NOT NULL,
    item_type           text        NOT NULL,
    item_id             text        NOT NULL,
    event_type          text        NOT NULL,
    payload             jsonb       NOT NULL,
    actor_email         text        NOT NULL,
    actor_name          text,
    occurred_at         timestamptz NOT NULL,
    source_partition    integer     NOT NULL,
    source_offset       bigint      NOT NULL
);
CREATE INDEX item_submissions_item ON item_submissions (company_id, item_type, item_id);
CREATE INDEX item_submissions_status ON item_submissions (status_event_id);

CREATE TABLE item_decisions (
    event_id            uuid        PRIMARY KEY,
    status_event_id     uuid        NOT NULL,
    company_id          text        NOT NULL,
    item_type           text        NOT NULL,
    item_id             text        NOT NULL,
    event_type          text        NOT NULL,
    payload             jsonb       NOT NULL,
    actor_email         text        NOT NULL,
    actor_name          text,
    occurred_at         timestamptz NOT NULL,
    source_partition    integer     NOT NULL,
    source_offset       bigint      NOT NULL
);
CREATE INDEX item_decisions_item ON item_decisions (company_id, item_type, item_id);
CREATE INDEX item_decisions_status ON item_decisions (status_event_id);

CREATE TABLE item_refusals (
    event_id            uuid        PRIMARY KEY,
    company_id          text        NOT NULL,
    item_type           text        NOT NULL,
    item_id             text        NOT NULL,
    refused_event_id    text,
    refused_event_type  text,
    stage               text        NOT NULL,
    error               text        NOT NULL,
    actor_email         text        NOT NULL,
    actor_name          text,
    occurred_at         timestamptz NOT NULL,
    source_topic        text        NOT NULL
);
CREATE INDEX item_refusals_item ON item_refusals (company_id, item_type, item_id);
