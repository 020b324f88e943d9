"""Where the repository is, for tests that read its files or run its CLI from it."""

from __future__ import annotations

from pathlib import Path

#: The repository's root directory (holds pyproject.toml, README.md, docs/, deploy/).
ROOT = Path(__file__).resolve().parents[2]
