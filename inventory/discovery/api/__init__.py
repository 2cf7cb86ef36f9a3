"""Discovery over the REST API: imports, findings and the actions on them, scope mappings."""
