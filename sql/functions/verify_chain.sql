{% from "fragments/seal.sql" import seal_event_hash, seal_block_hash %}
-- verify_chain: recomputes the chain and each sealed event's hash, and
-- returns what does not match, by block (docs/integrity.md#verifying). No
-- rows: the log is as it was sealed, but for what retention removed.
-- Runs with the caller's rights: a reader of the log. One block in memory
-- at a time.
CREATE OR REPLACE FUNCTION {{ schema | ident }}.verify_chain()
RETURNS TABLE (block bigint, kind text, ids bigint[], detail text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_prev    bytea := decode(repeat('00', 32), 'hex');
    v_expect  bigint := 0;
    v_b       record;
    v_head    {{ schema | ident }}.seal_head;
    v_body    bytea;
    v_n       bigint;
    v_all     int8multirange := '{}';
    v_retired boolean;
    v_find    record;
BEGIN
    SELECT * INTO v_head FROM {{ schema | ident }}.seal_head;
    FOR v_b IN
        SELECT b.* FROM {{ schema | ident }}.seal_blocks AS b ORDER BY b.block
    LOOP
        v_expect := v_expect + 1;
        IF v_b.block <> v_expect THEN
            block := v_expect; kind := 'truncated'; ids := NULL;
            detail := format('blocks %s to %s are missing from the chain', v_expect, v_b.block - 1);
            RETURN NEXT;
            v_expect := v_b.block;
        END IF;
        -- The block as stored: its link, and its hash over what it says.
        SELECT string_agg(int8send(i.id) || substring(v_b.hashes FROM 32 * (i.ord - 1)::integer + 1 FOR 32),
                          ''::bytea ORDER BY i.ord), count(*)
          INTO v_body, v_n
        FROM (SELECT g.id, row_number() OVER (ORDER BY g.id) AS ord
              FROM unnest(v_b.ids) AS r(span)
              CROSS JOIN LATERAL generate_series(lower(r.span), upper(r.span) - 1) AS g(id)) AS i;
        IF v_b.prev_hash <> v_prev OR v_n <> v_b.events
           OR v_b.hash <> {{ seal_block_hash('v_prev', 'v_b.block', 'v_b.first_at', 'v_b.last_at', "coalesce(v_body, ''::bytea)") }} THEN
            block := v_b.block; kind := 'altered'; ids := NULL;
            detail := format('block %s of the chain does not match its own contents or the block before it', v_b.block);
            RETURN NEXT;
        END IF;
        v_prev := v_b.hash;
        v_all := v_all + v_b.ids;

        v_retired := EXISTS (SELECT FROM {{ schema | ident }}.seal_retired AS r
                             WHERE r.range_from <= v_b.first_at AND v_b.last_at < r.range_to);
        -- Each sealed id against the event that has it now.
        FOR v_find IN
            WITH sealed AS (
                SELECT g.id, substring(v_b.hashes FROM 32 * (row_number() OVER (ORDER BY g.id) - 1)::integer + 1 FOR 32) AS h
                FROM unnest(v_b.ids) AS r(span)
                CROSS JOIN LATERAL generate_series(lower(r.span), upper(r.span) - 1) AS g(id)
            ), present AS (
                SELECT e.id, {{ seal_event_hash('e', 'x') | indent(27) }} AS h
                FROM {{ schema | ident }}.events AS e
                LEFT JOIN {{ schema | ident }}.seal_erasures AS x ON x.event_id = e.id
                WHERE e.id >= lower(v_b.ids) AND e.id < upper(v_b.ids) AND e.id <@ v_b.ids
            ), judged AS (
                SELECT coalesce(s.id, p.id) AS id,
                       CASE WHEN p.id IS NULL THEN CASE WHEN v_retired THEN 'retired' ELSE 'deleted' END
                            WHEN count(*) OVER (PARTITION BY p.id) > 1 THEN 'inserted'
                            WHEN p.h = s.h THEN NULL
                            WHEN EXISTS (SELECT FROM sealed AS o WHERE o.h = p.h) THEN 'reordered'
                            ELSE 'edited' END AS kind
                FROM sealed AS s FULL JOIN present AS p ON p.id = s.id
            )
            SELECT j.kind, array_agg(DISTINCT j.id ORDER BY j.id) AS ids
            FROM judged AS j WHERE j.kind IS NOT NULL AND j.kind <> 'retired'
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

    IF v_head.block <> v_expect OR v_head.hash <> v_prev THEN
        block := v_head.block; kind := CASE WHEN v_head.block > v_expect THEN 'truncated' ELSE 'altered' END;
        ids := NULL;
        detail := format('the chain head says block %s, the chain ends at block %s', v_head.block, v_expect);
        RETURN NEXT;
    END IF;

    -- Events below the sealed bound that no block covers were added since.
    FOR v_find IN
        SELECT (SELECT max(b.block) FROM {{ schema | ident }}.seal_blocks AS b
                WHERE lower(b.ids) <= e.id) AS block,
               array_agg(e.id ORDER BY e.id) AS ids
        FROM {{ schema | ident }}.events AS e
        WHERE e.id <= v_head.sealed_to AND NOT e.id <@ v_all
        GROUP BY 1 ORDER BY 1 NULLS FIRST
    LOOP
        block := coalesce(v_find.block, 1); kind := 'inserted'; ids := v_find.ids;
        detail := format('block %s: %s event%s added under ids sealing found unused', block,
                         cardinality(v_find.ids), CASE WHEN cardinality(v_find.ids) = 1 THEN '' ELSE 's' END);
        RETURN NEXT;
    END LOOP;
END
$fn$;
