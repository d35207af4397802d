"""Fast tests without a database."""
