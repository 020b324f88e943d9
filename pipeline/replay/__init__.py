"""Rebuilding items from the audit topics with the live rules, and the audit report (pure)."""
