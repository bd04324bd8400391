"""Features: keyed feature tables and training sets built by feature lookups."""
