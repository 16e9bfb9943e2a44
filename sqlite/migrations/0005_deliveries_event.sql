-- Retention (Prune) walks events in publishing order and reaches their
-- deliveries through this index; deleting an event also checks, for its
-- foreign key, that no delivery points at it, which without the index
-- would read the whole deliveries table once per event. event_seq never
-- changes, so the index costs one entry per delivery, written at publish.
CREATE INDEX deliveries_event ON deliveries (event_seq);
