package signalbridge

// PendingCount exposes the number of calls waiting for a reply, for leak checks in tests.
func PendingCount(c *Client) int { return c.pendingCount() }
