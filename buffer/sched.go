package buffer

import (
	"math"
	"slices"
	"time"
)

const (
	readyCap   = 4096 // max heads per priority held in memory
	readyChunk = 256  // heads loaded from s/ per read
	promoteMax = 4096 // w/ keys examined per Lease
)

// scheduler is the in-memory view of the ready heads. It is a cache over
// the persisted s/ and w/ indexes: for each priority p, every s/ key with
// seq < frontier[p] is in ready[p], leased, not yet due (then a w/ key
// exists and promotion re-adds it), or being removed by the writer. Keys at
// or above the frontier are read from disk in chunks, by Seek, never by a
// prefix rewind.
type scheduler struct {
	ready       [3][]uint64 // sorted ascending
	frontier    [3]uint64
	leasedByID  map[string]*lease
	leasedBySeq map[uint64]*lease
	removing    map[uint64]bool // seqs an uncommitted batch is deleting
	wCursor     []byte          // every live w/ key >= wCursor is not yet promoted
	xLow        uint64          // lower bound (sortable) of live x/ keys
}

type lease struct {
	id          string
	seq         uint64
	prio        Priority
	to          string
	deadline    time.Time
	pending     bool // a batch holding an op on this lease is committing
	done        bool // a terminal op (Ack/Retry) is in the committing batch
	sendStarted bool
}

func (sc *scheduler) init(m meta) {
	sc.frontier = m.sLow
	sc.leasedByID = map[string]*lease{}
	sc.leasedBySeq = map[uint64]*lease{}
	sc.removing = map[uint64]bool{}
	sc.wCursor = u64([]byte{pWait}, m.wLow)
	sc.xLow = m.xLow
}

func (sc *scheduler) addReady(p Priority, seq uint64) {
	if seq >= sc.frontier[p] || sc.leasedBySeq[seq] != nil {
		return
	}
	r := sc.ready[p]
	i, found := slices.BinarySearch(r, seq)
	if found {
		return
	}
	r = slices.Insert(r, i, seq)
	if len(r) > readyCap {
		sc.frontier[p] = r[len(r)-1]
		r = r[:len(r)-1]
	}
	sc.ready[p] = r
}

func (sc *scheduler) removeReady(p Priority, seq uint64) {
	if p > PriorityLow {
		return
	}
	r := sc.ready[p]
	if i, found := slices.BinarySearch(r, seq); found {
		sc.ready[p] = slices.Delete(r, i, i+1)
	}
}

// noteWait lowers the promotion cursor to a newly written w/ key.
func (sc *scheduler) noteWait(k []byte) {
	if string(k) < string(sc.wCursor) {
		sc.wCursor = k
	}
}

// sLow is a lower bound of the live s/ keys of priority p that are not
// waiting for promotion (those are found again through w/ from wCursor).
// next is the next seq to be assigned.
func (sc *scheduler) sLow(p Priority, next uint64) uint64 {
	low := sc.frontier[p]
	if len(sc.ready[p]) > 0 && sc.ready[p][0] < low {
		low = sc.ready[p][0]
	}
	for _, l := range sc.leasedBySeq {
		if l.prio == p && l.seq < low {
			low = l.seq
		}
	}
	if low == math.MaxUint64 {
		return next // exhausted and empty: only future heads remain
	}
	return low
}
