-- What the approver enters at accept, and the parts of the snapshot Spectrum takes, reach the
-- reference ERP: a CCO's description, a commitment's accept details (as the commitment's
-- notes), and a PCCO's lines, each with the prime contract line item it changes.
ALTER TABLE spectrum.change_orders ADD COLUMN description text;

ALTER TABLE spectrum.commitments ADD COLUMN notes text;

CREATE TABLE spectrum.ar_change_request_lines (
    company_id      text           NOT NULL,
    job_number      varchar(10)    NOT NULL,
    request_number  varchar(20)    NOT NULL,
    line_number     integer        NOT NULL,
    prime_line_item varchar(20)    NOT NULL,
    description     varchar(120)   NOT NULL,
    amount          numeric(19, 4) NOT NULL,
    PRIMARY KEY (company_id, job_number, request_number, line_number),
    FOREIGN KEY (company_id, job_number, request_number) REFERENCES spectrum.ar_change_requests
);
