-- openwop schema, part 6: reading the event log.

-- The events of a run after a sequence (-1 = from the start), in order. Raises not_found
-- (OW404) for an unknown run or a run of another tenant.
CREATE FUNCTION openwop.events(
    run_id    uuid,
    after_seq integer DEFAULT -1,
    tenant    text DEFAULT openwop.current_tenant()
) RETURNS TABLE (seq integer, type text, node_id text, payload jsonb, ts timestamptz)
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_column
BEGIN
    PERFORM openwop._act_as(events.tenant);
    IF NOT EXISTS (SELECT 1 FROM openwop.runs r WHERE r.tenant_id = events.tenant AND r.id = events.run_id) THEN
        PERFORM openwop._run_not_found(events.run_id);
    END IF;
    RETURN QUERY
        SELECT e.seq, e.type, e.node_id, e.payload, e.ts
        FROM openwop.events e
        WHERE e.tenant_id = events.tenant AND e.run_id = events.run_id AND e.seq > events.after_seq
        ORDER BY e.seq;
END
$$;
COMMENT ON FUNCTION openwop.events(uuid, integer, text) IS
  'The event log of a run after a sequence number (-1 = all), in sequence order.';

-- The wire documents (RunEventDoc) of a run's events after a sequence, at most `max_events`,
-- for protocol major `major` (1 or 2), as {"runStatus": ..., "events": [...]}. This is the one
-- function every protocol reader (poll, SSE) goes through, so any per-major translation of
-- stored events lives here. The run status tells a reader when the log is complete: a
-- terminal status is committed together with the terminal event, which is always last.
CREATE FUNCTION openwop.event_docs(
    run_id     uuid,
    after_seq  integer DEFAULT -1,
    max_events integer DEFAULT 1000,
    major      integer DEFAULT 1,
    tenant     text DEFAULT openwop.current_tenant()
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    st   text;
    docs jsonb;
BEGIN
    PERFORM openwop._act_as(event_docs.tenant);
    SELECT r.status INTO st FROM openwop.runs r
    WHERE r.tenant_id = event_docs.tenant AND r.id = event_docs.run_id;
    IF NOT FOUND THEN
        PERFORM openwop._run_not_found(event_docs.run_id);
    END IF;
    -- Core event names are identical in both majors; era-3 logs need no translation for them.
    SELECT coalesce(jsonb_agg(d.doc ORDER BY d.seq), '[]') INTO docs
    FROM (
        SELECT e.seq,
               jsonb_build_object(
                   'eventId', 'evt-' || e.run_id || '-' || e.seq,
                   'runId', e.run_id,
                   'type', e.type,
                   'payload', e.payload,
                   'timestamp', openwop._iso(e.ts),
                   'sequence', e.seq,
                   'schemaVersion', 1,
                   'engineVersion', CASE WHEN event_docs.major = 1 THEN to_jsonb('1'::text) ELSE to_jsonb(1) END)
               || openwop._field('nodeId', to_jsonb(e.node_id)) AS doc
        FROM openwop.events e
        WHERE e.tenant_id = event_docs.tenant AND e.run_id = event_docs.run_id AND e.seq > event_docs.after_seq
        ORDER BY e.seq
        LIMIT greatest(event_docs.max_events, 1)
    ) d;
    RETURN jsonb_build_object('runStatus', st, 'events', docs);
END
$$;
COMMENT ON FUNCTION openwop.event_docs(uuid, integer, integer, integer, text) IS
  'Protocol event documents after a sequence plus the run status, as {"runStatus","events"}; the single reader seat.';
