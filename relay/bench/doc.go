// Package bench holds relay's end-to-end benchmarks (issue 5, "Benchmarks"); it has no code of
// its own, only Benchmark functions, so `go test` without -bench runs nothing here.
//
//   - BenchmarkIngest: jobs/s from an MQTT publish through relay/mqtt, relay.Intake and
//     relay/store (a real Badger outbox, synced) to the PUBACK, against Mosquitto's own QoS 1
//     pass-through rate (a subscriber that only acknowledges) measured on the same broker in the
//     same run, with Mosquitto's default max_inflight_messages (20) and with 1000.
//   - BenchmarkLatency: publish → Signal send call at 100 jobs/s, every job to a new recipient
//     with a consent proof, through the whole in-process pipeline (dispatcher included) and a
//     fake relay.Signal that timestamps the calls; p50/p99/max.
//   - BenchmarkRelaydRSS: the real relayd binary (built by the benchmark) as a child process
//     with a fake signal-cli whose sends never finish, filled with 100,000 queued jobs and then
//     fed 100 jobs/s; VmHWM and VmRSS from /proc, under GOMEMLIMIT 96MiB and 48MiB (the unit's).
//
// All of them need Mosquitto (mqtttest skips without it). The machine they ran on is noted
// with the numbers in issue 5; run them with -count and read medians.
package bench
