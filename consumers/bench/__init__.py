"""`erp-pipeline bench`: throughput, latency and memory of the pipeline against a raw baseline."""
