{#- First statements of capture_truncate: the key columns must be there,
    and no user-defined json cast may run with audit rights. #}
    IF TG_NARGS < 1 THEN
        RAISE EXCEPTION 'auditsql: trigger % on % has no key columns; run attach again', TG_NAME, v_entity_type;
    END IF;
    PERFORM {{ schema | ident }}.check_json_casts();
