-- The reference ERP: a Spectrum-shaped company in PostgreSQL. Its constraints are the rules the
-- real system enforces, so an export fails here for the same reasons it would fail there.
CREATE SCHEMA IF NOT EXISTS spectrum;

CREATE TABLE spectrum.job_templates (
    company_id      text        NOT NULL,
    template_code   varchar(10) NOT NULL,
    description     varchar(30) NOT NULL,
    PRIMARY KEY (company_id, template_code)
);

CREATE TABLE spectrum.template_cost_codes (
    company_id      text        NOT NULL,
    template_code   varchar(10) NOT NULL,
    phase_code      varchar(20) NOT NULL,
    cost_type       varchar(3)  NOT NULL DEFAULT 'S',
    description     varchar(30) NOT NULL,
    PRIMARY KEY (company_id, template_code, phase_code),
    FOREIGN KEY (company_id, template_code) REFERENCES spectrum.job_templates
);

CREATE TABLE spectrum.vendors (
    company_id      text        NOT NULL,
    vendor_code     varchar(10) NOT NULL,
    name            varchar(60) NOT NULL,
    PRIMARY KEY (company_id, vendor_code)
);

CREATE TABLE spectrum.jobs (
    company_id          text          NOT NULL,
    job_number          varchar(10)   NOT NULL,
    template_code       varchar(10)   NOT NULL,
    description         varchar(120)  NOT NULL,
    address             text,
    customer            text,
    division            text,
    price_type          text,
    taxable             boolean,
    contract_amount     numeric(19, 4) NOT NULL DEFAULT 0,
    upstream_project_id text          NOT NULL,
    created_at          timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, job_number),
    CONSTRAINT jobs_upstream_project_key UNIQUE (company_id, upstream_project_id),
    FOREIGN KEY (company_id, template_code) REFERENCES spectrum.job_templates
);

-- Phases (cost codes) of a job, copied from its template when the job is created.
CREATE TABLE spectrum.job_phases (
    company_id      text        NOT NULL,
    job_number      varchar(10) NOT NULL,
    phase_code      varchar(20) NOT NULL,
    cost_type       varchar(3)  NOT NULL,
    description     varchar(30) NOT NULL,
    PRIMARY KEY (company_id, job_number, phase_code),
    FOREIGN KEY (company_id, job_number) REFERENCES spectrum.jobs
);

-- Subcontracts and purchase orders.
CREATE TABLE spectrum.commitments (
    company_id      text           NOT NULL,
    commitment_id   varchar(10)    NOT NULL,
    commitment_type text           NOT NULL CHECK (commitment_type IN ('subcontract', 'purchase_order')),
    job_number      varchar(10)    NOT NULL,
    vendor_code     varchar(10)    NOT NULL,
    description     varchar(120)   NOT NULL,
    amount          numeric(19, 4) NOT NULL,
    upstream_id     text           NOT NULL,
    created_at      timestamptz    NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, commitment_id),
    CONSTRAINT commitments_upstream_key UNIQUE (company_id, upstream_id),
    FOREIGN KEY (company_id, job_number) REFERENCES spectrum.jobs,
    FOREIGN KEY (company_id, vendor_code) REFERENCES spectrum.vendors
);

CREATE TABLE spectrum.commitment_lines (
    company_id      text           NOT NULL,
    commitment_id   varchar(10)    NOT NULL,
    line_number     integer        NOT NULL,
    job_number      varchar(10)    NOT NULL,
    phase_code      varchar(20)    NOT NULL,
    description     varchar(120)   NOT NULL,
    amount          numeric(19, 4) NOT NULL,
    PRIMARY KEY (company_id, commitment_id, line_number),
    FOREIGN KEY (company_id, commitment_id) REFERENCES spectrum.commitments,
    FOREIGN KEY (company_id, job_number, phase_code) REFERENCES spectrum.job_phases
);

CREATE TABLE spectrum.change_orders (
    company_id        text           NOT NULL,
    commitment_id     varchar(10)    NOT NULL,
    change_order_id   varchar(12)    NOT NULL,
    title             varchar(30)    NOT NULL,
    change_order_date date           NOT NULL,
    amount            numeric(19, 4) NOT NULL,
    upstream_id       text           NOT NULL,
    created_at        timestamptz    NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, commitment_id, change_order_id),
    CONSTRAINT change_orders_upstream_key UNIQUE (company_id, upstream_id),
    FOREIGN KEY (company_id, commitment_id) REFERENCES spectrum.commitments
);

CREATE TABLE spectrum.change_order_lines (
    company_id      text           NOT NULL,
    commitment_id   varchar(10)    NOT NULL,
    change_order_id varchar(12)    NOT NULL,
    line_number     integer        NOT NULL,
    job_number      varchar(10)    NOT NULL,
    phase_code      varchar(20)    NOT NULL,
    description     varchar(120)   NOT NULL,
    amount          numeric(19, 4) NOT NULL,
    PRIMARY KEY (company_id, commitment_id, change_order_id, line_number),
    FOREIGN KEY (company_id, commitment_id, change_order_id) REFERENCES spectrum.change_orders,
    FOREIGN KEY (company_id, job_number, phase_code) REFERENCES spectrum.job_phases
);

-- Prime contract change orders become AR change requests on the job.
CREATE TABLE spectrum.ar_change_requests (
    company_id        text           NOT NULL,
    job_number        varchar(10)    NOT NULL,
    request_number    varchar(20)    NOT NULL,
    billing_item_code varchar(10)    NOT NULL,
    description       varchar(120)   NOT NULL,
    transaction_date  date           NOT NULL,
    amount            numeric(19, 4) NOT NULL,
    upstream_id       text           NOT NULL,
    created_at        timestamptz    NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, job_number, request_number),
    CONSTRAINT ar_change_requests_upstream_key UNIQUE (company_id, upstream_id),
    FOREIGN KEY (company_id, job_number) REFERENCES spectrum.jobs
);
