package store

// SetApplyHook makes every Apply run fn first and fail with its error (nil: go on), to cause a
// failed commit without touching the buffer.
func SetApplyHook(s *Store, fn func() error) { s.applyHook = fn }
