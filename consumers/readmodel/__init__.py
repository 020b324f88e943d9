"""The PostgreSQL read model: the projection of erp.status and the queries that read it."""
