"""System tests: every worker twice, killed at random, bad input, a database outage."""
