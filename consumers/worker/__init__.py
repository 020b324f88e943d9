"""What every aiokafka worker shares: the consume loop, offsets, backoff, database, registry."""
