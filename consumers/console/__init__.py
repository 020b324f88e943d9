"""The approver's console: views of the read model and decisions, over HTML pages and a JSON API."""
