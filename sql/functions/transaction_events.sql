-- transaction_events: every event of one transaction, in the order it
-- wrote them (events_brin).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.transaction_events(p_txid bigint)
RETURNS SETOF {{ schema | ident }}.history
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT h.* FROM {{ schema | ident }}.history AS h
    WHERE h.txid = p_txid
    ORDER BY h.id
$fn$;
