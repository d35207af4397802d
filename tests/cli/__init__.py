"""End-to-end tests of the auditsql command line."""
