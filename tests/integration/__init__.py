"""Integration tests: the real broker and PostgreSQL, workers in-process or one at a time."""
