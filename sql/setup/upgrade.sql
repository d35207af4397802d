{#- `upgrades`: the steps of sql/upgrades, oldest first, each with its
    source and target versions and its SQL rendered for this installation
    (auditsql/upgrades.py). -#}
-- Applies the upgrade steps from the installed version, before anything is
-- created: the files that follow create tables only when missing, in this
-- version's shape.
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
