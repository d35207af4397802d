"""SQL behaviour and security tests on a real PostgreSQL server."""
