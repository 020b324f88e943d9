"""The reference ERP's schema (Spectrum-shaped) and the export ledger, as plain-SQL migrations."""
