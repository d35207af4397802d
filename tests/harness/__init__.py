"""The test harness: what the fixtures in ``tests/conftest.py`` are made of.

- ``pgcluster``: find PostgreSQL server binaries, run throwaway clusters
  (plain Python: the demo and benchmark scripts use it too);
- ``server``: the server a test session uses, and how it is chosen;
- ``databases``: new databases, empty or copied from a template;
- ``templates``: databases with auditsql installed once per session and
  copied for each test;
- ``roles``: throwaway login roles.
"""
