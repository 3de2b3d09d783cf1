package endpoint

// descriptorBudget caps the inbound connections and the outbound
// destinations so that, together, they never take the descriptors the rest
// of the process needs (its HTTP listener, the state file, calls to the
// backend). Of the soft limit, a reserve is kept for the process: a
// quarter, or 256 when a quarter is less (but never more than half); two
// more descriptors are for the listener and for a connection being refused.
// The rest is split between inbound connections and outbound destinations,
// each at least 1. A limit of 0 (unknown) leaves the caps as they are.
func descriptorBudget(limit uint64, maxConns, maxDests int) (conns, dests int) {
	if limit == 0 {
		return maxConns, maxDests
	}
	reserve := limit / 4
	if reserve < 256 {
		reserve = min(256, limit/2)
	}
	avail := limit - reserve
	if avail > 2 {
		avail -= 2
	}
	// Large limits (or RLIM_INFINITY) must not overflow an int.
	avail = min(avail, 1<<30)
	conns = min(maxConns, max(1, int(avail/2)))
	dests = min(maxDests, max(1, int(avail)-conns))
	return conns, dests
}
