"""Side-effect workers (export, projection, notifier), the embedded stack and the CLI."""
