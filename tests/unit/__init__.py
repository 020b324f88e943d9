"""Unit tests: pure logic with fakes, no broker or database, in milliseconds."""
