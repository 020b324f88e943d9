"""The approval rules, pure: reaction table, send/accept rules, directory, derived events."""
