-- The export ledger lives beside the ERP's tables so that an ERP write and its ledger row
-- commit in one transaction: an export either happened and is recorded, or neither.
CREATE SCHEMA IF NOT EXISTS exporter;

CREATE TABLE exporter.export_ledger (
    export_id         text        PRIMARY KEY,
    company_id        text        NOT NULL,
    item_type         text        NOT NULL,
    item_id           text        NOT NULL,
    attempt           integer     NOT NULL,
    outcome           text        NOT NULL CHECK (outcome IN ('exported', 'failed')),
    erp_reference     text,
    error_code        text,
    error_message     text,
    source_topic      text        NOT NULL,
    source_partition  integer     NOT NULL,
    source_offset     bigint      NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'exported') = (erp_reference IS NOT NULL))
);
CREATE INDEX export_ledger_item ON exporter.export_ledger (company_id, item_type, item_id);
