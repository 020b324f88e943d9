"""The reference ERP adapter: a Spectrum-shaped schema in PostgreSQL, mapping, writes."""
