"""The side-effect workers (export, notify, read model), their consume loop, and their tools."""
