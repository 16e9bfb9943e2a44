package hookd

// PruneResult is what one call of a store's Prune removed, and where the
// next call goes on.
type PruneResult struct {
	// Events, Deliveries and Attempts are the rows deleted.
	Events, Deliveries, Attempts int
	// Next is the cursor of the next call: "" when this call reached the
	// events published at or after the cutoff, so nothing older is left to
	// look at.
	Next string
}
