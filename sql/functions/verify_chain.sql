{% from "fragments/seal.sql" import seal_event_hash, seal_block_hash %}
{#- The ids a block covers (`ids`, its multirange), each with its place
    in the block's hashes (`ord`, from 0): a span's ids follow the ids of
    the spans before it. -#}
{% macro sealed_ids(ids) -%}
(SELECT g.id, sp.base + (g.id - sp.lo) AS ord
 FROM (SELECT lower(r.span) AS lo, upper(r.span) AS hi,
              (sum(upper(r.span) - lower(r.span)) OVER (ORDER BY lower(r.span))
               - (upper(r.span) - lower(r.span)))::bigint AS base
       FROM unnest({{ ids }}) AS r(span)) AS sp
 CROSS JOIN LATERAL generate_series(sp.lo, sp.hi - 1) AS g(id))
{%- endmacro %}
{#- The events with ids from `lo` up to `hi` (excluded) outside the
    multirange `open` that no block covers, in an array (NULL: none). The
    blocks are searched only for the ids `open` misses, which are rare. -#}
{% macro unsealed(lo, hi, open) -%}
(WITH outside AS MATERIALIZED (
     SELECT e.id FROM {{ schema | ident }}.events AS e
     WHERE e.id >= {{ lo }} AND e.id < {{ hi }} AND NOT e.id <@ {{ open }}
 )
 SELECT array_agg(o.id ORDER BY o.id) FROM outside AS o
 WHERE NOT EXISTS (SELECT FROM {{ schema | ident }}.seal_blocks AS b
                   WHERE lower(b.ids) <= o.id AND o.id < upper(b.ids) AND o.id <@ b.ids))
{%- endmacro %}
{#- What verify_chain reports of `found`, the events no block covers
    below a block (or above the last): where blocks `first_missing` to
    `last_missing` are gone, those above `upper` (the id after the last
    block read; NULL: none read) are theirs, reported with the blocks as
    `truncated`; the others were added under ids that block `last` covers
    or found unused, `inserted`. Consumes `found`. -#}
{% macro report_uncovered(found, last, upper, first_missing, last_missing) -%}
IF {{ last_missing }} >= {{ first_missing }} THEN
    block := {{ first_missing }}; kind := 'truncated';
    ids := nullif(ARRAY(SELECT u.id FROM unnest({{ found }}) AS u(id)
                        WHERE u.id >= coalesce({{ upper }}, u.id) ORDER BY u.id), '{}');
    detail := format('blocks %s to %s are missing from the chain', {{ first_missing }}, {{ last_missing }})
              || CASE WHEN ids IS NULL THEN ''
                      ELSE format(', with the %s event%s of theirs no block covers', cardinality(ids),
                                  CASE WHEN cardinality(ids) = 1 THEN '' ELSE 's' END) END;
    RETURN NEXT;
    {{ found }} := nullif(ARRAY(SELECT u.id FROM unnest({{ found }}) AS u(id)
                                WHERE u.id < {{ upper }} ORDER BY u.id), '{}');
END IF;
IF {{ found }} IS NOT NULL THEN
    block := coalesce({{ last }}, 1); kind := 'inserted'; ids := {{ found }};
    detail := format('block %s: %s event%s added under ids sealing found unused', block,
                     cardinality(ids), CASE WHEN cardinality(ids) = 1 THEN '' ELSE 's' END);
    RETURN NEXT;
END IF;
{%- endmacro %}
-- verify_chain: recomputes the chain and each sealed event's hash, and
-- returns what does not match, by block (docs/integrity.md#verifying). No
-- rows: the log is as it was sealed, but for what retention removed.
-- Runs with the caller's rights: a reader of the log. Reads the blocks with
-- a cursor and the log a block at a time, so that memory does not grow
-- with the chain (docs/performance.md#the-hash-chain).
CREATE OR REPLACE FUNCTION {{ schema | ident }}.verify_chain()
RETURNS TABLE (block bigint, kind text, ids bigint[], detail text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
-- As in seal(): the encoding's text is UTF-8 through the send functions,
-- which write the client encoding, and parallel workers would not.
SET client_encoding = 'UTF8'
SET max_parallel_workers_per_gather = 0
-- Two small statements per block: compiling them costs more than it saves
-- (with it, verifying took ten times as long and its memory grew).
SET jit = off
AS $fn$
DECLARE
    v_prev    bytea := decode(repeat('00', 32), 'hex');
    v_expect  bigint := 0;
    v_b       record;
    v_last    bigint;
    v_head    {{ schema | ident }}.seal_head;
    v_n       bigint;
    -- Ids of the blocks read so far that may still reach above v_from: the
    -- only ones an event at or above v_from can be covered by, since each
    -- block starts above the one before it (sealing writes them so). Ids
    -- this misses are looked up in every block before they are reported,
    -- so a chain whose blocks were moved reports no covered id.
    v_open    int8multirange := '{}';
    v_from    bigint := -9223372036854775808;
    v_ids     bigint[];
    v_retired boolean;
    v_find    record;
    -- The id after the last block read: events no block covers below it
    -- were added under its ids, those above belong to blocks that are gone.
    v_upper   bigint;
BEGIN
    SELECT * INTO v_head FROM {{ schema | ident }}.seal_head;
    -- The hashes are read whole, once: a stored value is fetched in
    -- slices at each substring otherwise, once per event.
    FOR v_b IN
        SELECT b.block, b.ids, b.events, b.first_at, b.last_at, b.prev_hash, b.hash,
               b.hashes || ''::bytea AS hashes
        FROM {{ schema | ident }}.seal_blocks AS b ORDER BY b.block
    LOOP
        v_expect := v_expect + 1;
        -- Events below this block's first id that no block read so far
        -- covers: added since sealing (a later block starts higher), or,
        -- where blocks before this one are missing, theirs.
        v_ids := NULL;
        IF lower(v_b.ids) > v_from THEN
            v_ids := {{ unsealed('v_from', 'lower(v_b.ids)', 'v_open') | indent(12) }};
            v_from := lower(v_b.ids);
            v_open := v_open * int8multirange(int8range(v_from, NULL));
        END IF;
        {{ report_uncovered('v_ids', 'v_last', 'v_upper', 'v_expect', 'v_b.block - 1') | indent(8) }}
        v_expect := v_b.block;
        v_open := v_open + v_b.ids;
        v_last := v_b.block;
        v_upper := upper(v_b.ids);

        -- The block as stored: its link, and its hash over what it says.
        SELECT coalesce(sum(upper(r.span) - lower(r.span)), 0) INTO v_n FROM unnest(v_b.ids) AS r(span);
        IF v_b.prev_hash <> v_prev OR v_n <> v_b.events OR octet_length(v_b.hashes) <> 32 * v_n
           OR v_b.hash <> {{ seal_block_hash('v_prev', 'v_b.block', 'v_b.first_at', 'v_b.last_at', 'v_b.ids', 'v_b.hashes') | indent(26) }} THEN
            block := v_b.block; kind := 'altered'; ids := NULL;
            detail := format('block %s of the chain does not match its own contents or the block before it', v_b.block);
            RETURN NEXT;
        END IF;
        v_prev := v_b.hash;

        v_retired := EXISTS (SELECT FROM {{ schema | ident }}.seal_retired AS r
                             WHERE r.range_from <= v_b.first_at AND v_b.last_at < r.range_to);
        -- Each sealed id against the events that have it now: one per id,
        -- so a left join from the sealed ids finds every kind.
        FOR v_find IN
            WITH sealed AS (
                SELECT s.id, substring(v_b.hashes FROM (32 * s.ord)::integer + 1 FOR 32) AS h
                FROM {{ sealed_ids('v_b.ids') | indent(13) }} AS s
            ), present AS (
                SELECT p.id, count(*) AS n, (array_agg(p.h))[1] AS h
                FROM (SELECT e.id, {{ seal_event_hash('e', 'x') | indent(30) }} AS h
                      FROM {{ schema | ident }}.events AS e
                      LEFT JOIN {{ schema | ident }}.seal_erasures AS x ON x.event_id = e.id
                      WHERE e.id >= lower(v_b.ids) AND e.id < upper(v_b.ids) AND e.id <@ v_b.ids) AS p
                GROUP BY p.id
            ), judged AS (
                SELECT s.id,
                       CASE WHEN p.id IS NULL THEN CASE WHEN v_retired THEN NULL ELSE 'deleted' END
                            WHEN p.n > 1 THEN 'inserted'
                            WHEN p.h = s.h THEN NULL
                            WHEN p.h IN (SELECT o.h FROM sealed AS o) THEN 'reordered'
                            ELSE 'edited' END AS kind
                FROM sealed AS s LEFT JOIN present AS p ON p.id = s.id
            )
            SELECT j.kind, array_agg(j.id ORDER BY j.id) AS ids
            FROM judged AS j WHERE j.kind IS NOT NULL
            GROUP BY j.kind
        LOOP
            block := v_b.block; kind := v_find.kind; ids := v_find.ids;
            detail := format('block %s: %s event%s %s', v_b.block, cardinality(v_find.ids),
                             CASE WHEN cardinality(v_find.ids) = 1 THEN '' ELSE 's' END,
                             CASE v_find.kind
                                 WHEN 'deleted' THEN 'sealed and gone, not by retention'
                                 WHEN 'inserted' THEN 'added under an id the block already covers'
                                 WHEN 'reordered' THEN 'that carry the contents of another event of the block'
                                 ELSE 'changed since sealing' END);
            RETURN NEXT;
        END LOOP;
    END LOOP;

    -- The rest of the sealed bound, after the last block's first id: added
    -- since sealing, or the events of the blocks after the last, where the
    -- head says there are more.
    v_ids := NULL;
    IF v_head.sealed_to >= v_from THEN
        v_ids := {{ unsealed('v_from', 'v_head.sealed_to + 1', 'v_open') | indent(8) }};
    END IF;
    {{ report_uncovered('v_ids', 'v_last', 'v_upper', 'v_expect + 1', 'v_head.block') | indent(4) }}
    IF v_head.block < v_expect OR (v_head.block = v_expect AND v_head.hash <> v_prev) THEN
        block := v_head.block; kind := 'altered'; ids := NULL;
        detail := format('the chain head says block %s, the chain ends at block %s', v_head.block, v_expect);
        RETURN NEXT;
    END IF;
END
$fn$;
