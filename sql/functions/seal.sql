{% from "fragments/seal.sql" import seal_event_hash, seal_block_hash, seal_micros %}
{#- Which month of the default partition an event (alias `e`) belongs to,
    NULL in the other partitions: a block never spans two. -#}
{%- macro default_month(e) -%}
CASE WHEN {{ e }}.tableoid = {{ ((schema | ident) ~ '.events_default') | literal }}::regclass
     THEN date_trunc('month', {{ e }}.occurred_at AT TIME ZONE 'UTC') END
{%- endmacro %}
-- seal: hashes committed events into blocks of the chain
-- (docs/integrity.md#sealing).
--
-- Why the bound is safe: every path that records an event has its
-- transaction's id before it draws an event id (a capture trigger runs
-- after its row was written; the functions read txid_current() first).
-- This run reads the sequence before its own transaction id exists, so a
-- transaction with a later id draws event ids above that value; once no
-- transaction older than ours is running, every id up to the value is
-- committed, visible, or never will be. A run whose older transactions are
-- still running leaves the value as a mark, sealed by a later run.
-- Only the head row is locked: sealers take turns on it; writers never
-- wait on it, and the log is only read.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.seal(p_block_size integer DEFAULT 10000)
RETURNS TABLE (blocks integer, events bigint, sealed_to bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- A window of events sorts in memory.
SET work_mem = '64MB'
-- The encoding's text is UTF-8 through the binary send functions
-- (fragments/seal.sql), which write the client encoding; parallel workers
-- would write the database's, so none are used (a SELECT INTO launches
-- none anyway).
SET client_encoding = 'UTF8'
SET max_parallel_workers_per_gather = 0
-- A window costs little to plan and nothing to gain from compiling.
SET jit = off
AS $fn$
DECLARE
    v_fresh  boolean := pg_current_xact_id_if_assigned() IS NULL;
    v_seq    bigint;
    v_xid    bigint;
    v_head   {{ schema | ident }}.seal_head;
    v_snap   pg_snapshot;
    v_to     bigint;
    v_lo     bigint;
    v_hi     bigint;
    v_block  bigint;
    v_prev   bytea;
    v_rels    text[];
    v_ns      integer[];
    v_firsts  timestamptz[];
    v_lasts   timestamptz[];
    v_months  timestamp[];
    v_spans   int8range[];
    v_idsets  int8multirange[];
    v_ids     int8multirange;
    v_hashes  bytea[];
    v_blocks integer := 0;
    v_events bigint := 0;
BEGIN
    IF p_block_size IS NULL OR p_block_size NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'auditsql: seal: the block size must be between 1 and 100000 events, not %', coalesce(p_block_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_fresh THEN
        SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END INTO v_seq
        FROM {{ schema | ident }}.events_id_seq AS s;
    END IF;
    -- Takes this transaction's id, after the sequence was read.
    SELECT * INTO v_head FROM {{ schema | ident }}.seal_head FOR UPDATE;
    v_xid := pg_current_xact_id()::text::bigint;
    v_snap := pg_current_snapshot();
    v_to := v_head.sealed_to;
    IF v_head.mark_xid IS NOT NULL
       AND pg_snapshot_xmax(v_snap)::text::bigint >= v_head.mark_xid
       AND NOT EXISTS (SELECT FROM pg_snapshot_xip(v_snap) AS t(xid)
                       WHERE t.xid::text::bigint < v_head.mark_xid) THEN
        v_to := greatest(v_to, v_head.mark_id);
        v_head.mark_id := NULL;
        v_head.mark_xid := NULL;
    END IF;
    IF v_fresh THEN
        IF pg_snapshot_xmax(v_snap)::text::bigint >= v_xid
           AND NOT EXISTS (SELECT FROM pg_snapshot_xip(v_snap) AS t(xid)
                           WHERE t.xid::text::bigint < v_xid) THEN
            v_to := greatest(v_to, v_seq);
            v_head.mark_id := NULL;
            v_head.mark_xid := NULL;
        ELSIF v_head.mark_xid IS NULL AND v_seq > v_to THEN
            v_head.mark_id := v_seq;
            v_head.mark_xid := v_xid;
        END IF;
    END IF;

    v_block := v_head.block;
    v_prev := v_head.hash;
    v_lo := v_head.sealed_to;
    -- In windows of ids, so that a long backlog needs no more memory than
    -- one window.
    WHILE v_lo < v_to LOOP
        v_hi := least(v_lo + greatest(p_block_size, least(20 * p_block_size, 200000)), v_to);
        -- One statement, not a cursor loop; OFFSET 0 keeps the hashing once
        -- per event, not once per aggregate that reads it. A block is at
        -- most p_block_size ids of one partition. Its hashes are the one
        -- aggregate in id order: each such aggregate sorts its group again.
        SELECT array_agg(g.rel ORDER BY g.first_id), array_agg(g.month ORDER BY g.first_id),
               array_agg(g.n ORDER BY g.first_id),
               array_agg(g.first_at ORDER BY g.first_id), array_agg(g.last_at ORDER BY g.first_id),
               array_agg(g.span ORDER BY g.first_id), array_agg(g.ids ORDER BY g.first_id),
               array_agg(g.hashes ORDER BY g.first_id)
          INTO v_rels, v_months, v_ns, v_firsts, v_lasts, v_spans, v_idsets, v_hashes
        -- The ids a block covers: as many events as ids from its first to
        -- its last, and their sum that of those ids, is one run, the common
        -- case (the sum tells a forged duplicate id from the id it would
        -- hide). Otherwise (a rollback, an event of another partition in
        -- between) ids is NULL, and the block's ids are read again below:
        -- building a range per event costs about a seventh of sealing
        -- (docs/performance.md).
        FROM (SELECT c.rel::regclass::text AS rel, c.month, min(c.id) AS first_id,
                     count(*)::integer AS n,
                     min(c.occurred_at) AS first_at, max(c.occurred_at) AS last_at,
                     int8range(min(c.id), max(c.id), '[]') AS span,
                     CASE WHEN count(*) = max(c.id) - min(c.id) + 1
                               AND sum(c.id) = (min(c.id) + max(c.id))::numeric * count(*) / 2
                          THEN int8multirange(int8range(min(c.id), max(c.id), '[]')) END AS ids,
                     string_agg(c.h, ''::bytea ORDER BY c.id) AS hashes
              FROM (SELECT e.id, e.occurred_at, e.tableoid AS rel,
                           {{ default_month('e') | indent(27) }} AS month,
                           (e.id - v_lo - 1) / p_block_size AS chunk,
                           {{ seal_event_hash('e', 'x') | indent(27) }} AS h
                    FROM {{ schema | ident }}.events AS e
                    LEFT JOIN {{ schema | ident }}.seal_erasures AS x ON x.event_id = e.id
                    WHERE e.id > v_lo AND e.id <= v_hi
                    OFFSET 0) AS c
              GROUP BY c.rel, c.month, c.chunk) AS g;
        FOR i IN 1 .. coalesce(cardinality(v_rels), 0) LOOP
            v_ids := v_idsets[i];
            IF v_ids IS NULL THEN
                SELECT range_agg(int8range(e.id, e.id, '[]')) INTO v_ids
                FROM {{ schema | ident }}.events AS e
                WHERE e.id >= lower(v_spans[i]) AND e.id < upper(v_spans[i])
                  AND e.tableoid = v_rels[i]::regclass
                  AND {{ default_month('e') | indent(22) }} IS NOT DISTINCT FROM v_months[i];
            END IF;
            v_block := v_block + 1;
            v_head.hash := {{ seal_block_hash('v_prev', 'v_block', 'v_firsts[i]', 'v_lasts[i]', 'v_ids', 'v_hashes[i]') | indent(12) }};
            INSERT INTO {{ schema | ident }}.seal_blocks
                (block, ids, events, first_at, last_at, partition, hashes, prev_hash, hash)
            VALUES (v_block, v_ids, v_ns[i], v_firsts[i], v_lasts[i],
                    v_rels[i], v_hashes[i], v_prev, v_head.hash);
            v_prev := v_head.hash;
            v_blocks := v_blocks + 1;
            v_events := v_events + v_ns[i];
        END LOOP;
        v_lo := v_hi;
    END LOOP;

    UPDATE {{ schema | ident }}.seal_head AS h
       SET block = v_block, hash = v_prev, sealed_to = v_to,
           mark_id = v_head.mark_id, mark_xid = v_head.mark_xid,
           sealed_at = CASE WHEN v_blocks > 0 THEN now() ELSE h.sealed_at END;
    blocks := v_blocks;
    events := v_events;
    sealed_to := v_to;
    RETURN NEXT;
END
$fn$;
