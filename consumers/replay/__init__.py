"""`erp-pipeline replay`: read the audit topics, rebuild with the live rules, verify."""
