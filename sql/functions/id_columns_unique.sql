{% from "fragments/macros.sql" import id_columns_unique %}
-- id_columns_unique: whether columns identify a table's rows (see the macro).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.id_columns_unique(p_table regclass, p_keys text[])
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT {{ id_columns_unique('p_table', 'p_keys') }}
$fn$;
