-- auditsql 0.2.0 to 0.3.0: what 0.3.0 changes in objects that keep state,
-- and the functions it defines with other arguments or no longer has.
-- Applied by the install script (setup/upgrade.sql) before it creates
-- anything, as the owner role; functions, views and triggers are re-created
-- from the 0.3.0 files after it. Installations made between the two
-- releases record 0.2.0 as well, so each statement allows for its change
-- being there already. Never edited once 0.3.0 is released.

-- attach calls p_baseline baseline, as callers name it
-- (attach('t', baseline => true)); CREATE OR REPLACE cannot rename a
-- parameter, so the 0.2.0 function goes first (found by the old name, not
-- to drop the new one).
DO $step$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
         WHERE n.nspname = {{ schema | literal }} AND p.proname = 'attach'
           AND 'p_baseline' = ANY (p.proargnames)
    LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', v_function);
    END LOOP;
END
$step$;
