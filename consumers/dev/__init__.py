"""The embedded default and the demo: embedded services, dev stack, mail sink, samples."""
