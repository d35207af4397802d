{#- `upgrades`: the steps of sql/upgrades, oldest first, each with its
    source and target versions and its SQL rendered for this installation
    (auditsql/upgrades.py). -#}
-- Upgrade: on an installation of an earlier version, apply the steps that
-- lead from it to this one, in order, before anything is created (see
-- sql/upgrades/): they bring tables to the shape this version's files
-- create, and drop the functions it defines with other arguments. A fresh
-- install, or one of this version, applies none. An installation of a
-- version no step leads from (a newer one, or one never released) is
-- refused, and nothing changes.
DO $upgrade$
DECLARE
    v_installed text;
BEGIN
    IF pg_catalog.to_regclass({{ ((schema | ident) ~ '.installation') | literal }}) IS NULL THEN
        RETURN;
    END IF;
    SELECT i.version INTO v_installed
    FROM {{ schema | ident }}.installation AS i
    ORDER BY i.installed_at DESC, i.ctid DESC
    LIMIT 1;
    IF v_installed IS NULL OR v_installed = {{ version | literal }} THEN
        RETURN;
    END IF;
{%- for step in upgrades %}
    IF v_installed = {{ step.source | literal }} THEN
        EXECUTE {{ step.sql | literal }};
        v_installed := {{ step.target | literal }};
    END IF;
{%- endfor %}
    IF v_installed <> {{ version | literal }} THEN
        RAISE EXCEPTION 'auditsql: auditsql % is installed in schema %, and this script (auditsql %) has no upgrade from it',
            (SELECT i.version FROM {{ schema | ident }}.installation AS i
             ORDER BY i.installed_at DESC, i.ctid DESC LIMIT 1),
            {{ schema | literal }}, {{ version | literal }}
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'It is newer than this script, or a version never released: install the auditsql package of that version or later.';
    END IF;
END
$upgrade$;
