"""The approval-queue processor: the only faust code (wiring, step, state store, healing)."""
