"""Versioned plain-SQL migrations of the pipeline database (`NNNN_name.sql`)."""
