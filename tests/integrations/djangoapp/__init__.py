"""A small Django project for the integration tests: one model over the
audited ``notes`` table, views that write, log in and out, and change a
password."""
