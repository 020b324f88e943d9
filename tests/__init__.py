"""The test suite: `support/` helpers and four tiers (unit, integration, e2e, system)."""
