"""auditsql's test suite. Its harness, ``tests.harness``, is a package that
test modules and the scripts under ``scripts/`` import (run from the
repository root: ``python -m pytest``, ``python -m scripts.demo``)."""
