-- Retention (Prune) walks events in publishing order and reaches their
-- deliveries through this index; deleting an event also checks, for its
-- foreign key, that no delivery points at it, which without the index
-- would read the whole deliveries table once per event. Claims and
-- completions already rewrite every index of a delivery (they change
-- status or lease columns that other indexes hold), so this adds one small
-- entry to each of those writes.
CREATE INDEX deliveries_event ON deliveries (event_seq);
