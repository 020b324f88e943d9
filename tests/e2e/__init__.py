"""End-to-end tests: the `erp-pipeline` CLI driven as a user would."""
