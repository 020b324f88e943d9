"""`python -m consumers.cli` runs the CLI (the dev stack starts workers this way)."""

from consumers.cli import main

main()
