// Package buffer is relay's durable outbox: a Badger database holding the
// queued jobs and the small stores beside them (dedup index, journal,
// key-value area, spools for outbound MQTT events).
//
// # What it promises
//
//   - Put returns only after the message is synced to disk. Concurrent
//     writes (Put, Ack, Retry, Defer, MarkSending, Apply, journal, KV, spool) are
//     group-committed by one writer goroutine: what arrives while a commit
//     is being prepared (CommitWindow, or until every waiting caller is in
//     the batch) goes into one synced transaction, then each caller gets its
//     own result. A Put of an id that is queued, or reached a terminal
//     outcome within DedupWindow, is Duplicate (also within one batch).
//   - Per recipient strict FIFO by acceptance order: only the head of a
//     recipient's queue can be leased, and it stays the head while leased or
//     waiting for a retry/NotBefore. Across recipients: higher priority
//     first, then acceptance order.
//   - Leases live in memory only, so a crash makes every lease due again.
//     MarkSending is durable: a message whose send was started and never
//     resolved comes back from Lease with SendStarted=true.
//   - Expire removes messages past ExpiresAt durably and returns each once;
//     a leased message is left to its lease (Ack/Retry/timeout) first.
//   - Retry keeps the message at the head of its recipient's queue, so the
//     recipient's later messages wait (per-recipient order under retries).
//     Defer does the same without counting an attempt (a wait, not a
//     failure: quiet hours, a paused channel).
//   - A state change and its record are one transaction: Put (PutAsync),
//     Ack, Retry, Defer and Expire take Extras (SpoolExtra, JournalExtra,
//     KVExtra) that commit with the change or not at all, and Apply commits
//     extras alone. An operation that fails on its own (not leased, not
//     found, a duplicate Put) writes none of them. relay uses this so a
//     crash never leaves a job acknowledged without its terminal event.
//   - Ack/Retry/MarkSending name the message by id; after a lease timeout
//     the id belongs to whoever leased it next.
//   - Open never scans the queue: counters and cursors are in one meta
//     record rewritten by every commit.
//   - What a crash leaves is repaired before Badger opens, under its
//     directory lock: empty .mem/.vlog files (Badger deletes and creates
//     them in two steps; a SIGKILL between them made Badger refuse to open,
//     and Open used to move a healthy database aside), a torn last MANIFEST
//     or KEYREGISTRY record (the original kept as <file>.torn-<timestamp>).
//     Transient I/O errors are retried (3 attempts). Only errors Badger's
//     source names as damage rename the database to
//     <dir>.corrupt-<timestamp> (never deleted; Quarantined reports it); a
//     held lock, permissions, a full or read-only disk, a wrong key or
//     version and unknown errors make Open return *OpenError and move
//     nothing (see open.go). An undecodable record is moved to the b/ key space and its recipient's
//     queue continues; the id's outcome becomes OutcomeCorrupt.
//   - Writes that add data fail with ErrDiskFull (nothing written) when the
//     filesystem has less than Options.MinFreeSpace free or the commit
//     fails with ENOSPC.
//   - 64-bit only: the package does not compile for 386/arm/mips, and Open
//     refuses when strconv.IntSize != 64 (Badger loses data on 32-bit).
//
// # Key layout
//
// One prefix byte, then the parts; integers are 8-byte big-endian, times
// are Unix nanoseconds with the sign bit flipped so they sort. Every value
// this package writes starts with a format byte and ends with a CRC-32C.
//
//	M                           meta: nextSeq, depth, cursors (lower bounds)
//	m <seq>                     message record (acceptance order)
//	i <id>                      dedup entry: queued(seq) | terminal(outcome, at); TTL DedupWindow once terminal
//	q <to> 0x00 <seq>           recipient queue → id
//	h <to>                      recipient head → seq
//	s <prio> <seq>              every head → (due, to, id)
//	w <due> <prio> <seq>        heads with a due time (NotBefore / Retry), time ordered
//	x <expires> <seq>           messages with an ExpiresAt, time ordered
//	j <at> <n>                  journal entry
//	k <ns> 0x00 <key>           key-value area
//	p <name> 0x00 <seq>         spool item;  P <name> → spool head/next
//	b <original key>            "bad/": quarantined raw value
//
// # Cursors instead of rewinds
//
// Deleted keys leave tombstones that a prefix Rewind walks one by one (28 ms
// over 100k, see the dependencies reference). Every walk here starts with a
// Seek to a cursor that is a lower bound of the live keys: the next message
// of a recipient is found by seeking past the removed seq; the ready heads
// are loaded from s/ in chunks from a per-priority frontier into memory;
// w/, x/ and j/ are walked from cursors kept in meta.
//
// # Memory
//
// Badger runs with the small-memory option set from the dependencies
// reference (4 MB memtables, 1 MB base tables, 4 MB block and index caches,
// 2 compactors, SyncWrites, metrics off, its logs to slog at debug), with
// two changes found by profiling a 1M-job fill: no compression (table
// builders' block buffers were half the heap; JSON payloads this small
// barely compress) and 1 MB tables on every level (TableSizeMultiplier=1;
// builders allocate twice the table size). Run the daemon with
// GOMEMLIMIT=48MiB (1M-job drain: 68.5 MB VmHWM; 90.6 MB with 64MiB).
//
// Badger maps its files and never drops pages it has touched: compaction
// reads and writes tables through the mapping and the WAL is appended
// through its own, so touched pages stay in RSS. A trimmer pages the .sst,
// .mem and .vlog mappings out (MADV_PAGEOUT; see trim.go) as soon as the
// process's file-backed RSS has grown by 2 MiB (polled every 20 ms), and at
// least every Options.TrimInterval. Paging out never writes dirty pages
// (only the kernel's reclaim does), so durability still rests on Badger's
// syncs.
package buffer
