"""Test doubles and harnesses shared by test modules (no tests here)."""
