"""The objects auditsql/manifest.py reads from the layout of sql/ are exactly
those the install script creates: installed on a real server, every one is
there, stamped and as its file defines it, and nothing else is."""

from __future__ import annotations

import psycopg
import pytest

from auditsql import __version__, catalog
from auditsql.fingerprint import INSTALLED, classify
from auditsql.render import Settings, guard_schema_name, install_definitions, install_sql


@pytest.mark.parametrize("event_trigger", [True, False], ids=["superuser", "no event triggers"])
def test_the_catalog_holds_what_the_manifest_says(db: str, event_trigger: bool) -> None:
    settings = Settings()
    with psycopg.connect(db) as conn, conn.cursor() as cur:
        version = conn.info.server_version
        cur.execute(install_sql(settings, version, event_trigger=event_trigger).encode())
        conn.commit()
        script = install_definitions(settings, version, event_trigger=event_trigger)
        objects = catalog.fingerprinted_objects(cur, settings.schema)
        states = classify(script, objects, __version__)
        assert [(s.kind, s.identity, s.state, s.reason) for s in states
                if s.state != INSTALLED] == []
        # Every object defined is found, and stamped from its file.
        found = {s.defined: s.found for s in states if s.defined is not None}
        assert set(found) == set(script.definitions)
        assert all(o is not None and o.stamped_source == d.source for d, o in found.items())
        granted = {(kind, name) for kind, name, _, _ in catalog.public_privileges(
            cur, [settings.schema, guard_schema_name(settings.schema)])}
        assert granted == script.public_grants
