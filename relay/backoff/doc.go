// Package backoff computes retry delays for every retry loop in relay (signal-cli restarts, MQTT
// reconnects, job retries), so that they all grow, cap and spread out the same way.
//
// It owns one pure function, Delay. It promises: no allocation, no clock, no global random
// source (the caller passes the random number, so tests are deterministic), and a result that
// is never negative and never above the cap, for any attempt count (no overflow at attempt
// 1000 or with a cap near the largest time.Duration).
package backoff
