package buffer

import "encoding/binary"

// Key layout: see doc.go. One byte of prefix, then the parts; integers are
// big-endian so byte order is numeric order.
const (
	pMeta    = 'M' // M                         → meta
	pMsg     = 'm' // m <seq8>                  → message record
	pDedup   = 'i' // i <id>                    → dedupEntry (TTL once terminal)
	pQueue   = 'q' // q <to> 0x00 <seq8>        → id
	pHead    = 'h' // h <to>                    → head seq8
	pSched   = 's' // s <prio1> <seq8>          → headRef (every head)
	pWait    = 'w' // w <due8> <prio1> <seq8>   → empty (heads with a due time)
	pExpiry  = 'x' // x <exp8> <seq8>           → empty
	pJournal = 'j' // j <at8> <n8>              → Entry
	pKV      = 'k' // k <ns> 0x00 <key>         → value
	pSpool   = 'p' // p <name> 0x00 <seq8>      → data
	pSpoolM  = 'P' // P <name>                  → spoolMeta
	pBad     = 'b' // b <original key>          → raw bytes of an undecodable value
)

var keyMeta = []byte{pMeta}

func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func msgKey(seq uint64) []byte { return u64([]byte{pMsg}, seq) }

func dedupKey(id string) []byte { return append([]byte{pDedup}, id...) }

func queuePrefix(to string) []byte {
	k := make([]byte, 0, len(to)+10)
	k = append(k, pQueue)
	k = append(k, to...)
	return append(k, 0)
}

func queueKey(to string, seq uint64) []byte { return u64(queuePrefix(to), seq) }

func headKey(to string) []byte { return append([]byte{pHead}, to...) }

func schedKey(p Priority, seq uint64) []byte { return u64([]byte{pSched, byte(p)}, seq) }

func waitKey(due int64, p Priority, seq uint64) []byte {
	k := u64([]byte{pWait}, sortable(due))
	k = append(k, byte(p))
	return u64(k, seq)
}

func parseWaitKey(k []byte) (due int64, p Priority, seq uint64, ok bool) {
	if len(k) != 18 || k[0] != pWait {
		return 0, 0, 0, false
	}
	return unsortable(binary.BigEndian.Uint64(k[1:9])), Priority(k[9]), binary.BigEndian.Uint64(k[10:]), true
}

func expiryKey(exp int64, seq uint64) []byte { return u64(u64([]byte{pExpiry}, sortable(exp)), seq) }

func journalKey(at int64, n uint64) []byte { return u64(u64([]byte{pJournal}, sortable(at)), n) }

func kvKey(ns, key string) []byte {
	k := make([]byte, 0, len(ns)+len(key)+2)
	k = append(k, pKV)
	k = append(k, ns...)
	k = append(k, 0)
	return append(k, key...)
}

func spoolKey(name string, seq uint64) []byte {
	k := append([]byte{pSpool}, name...)
	k = append(k, 0)
	return u64(k, seq)
}

func spoolMetaKey(name string) []byte { return append([]byte{pSpoolM}, name...) }

func badKey(orig []byte) []byte { return append([]byte{pBad}, orig...) }

func seqSuffix(k []byte) uint64 {
	if len(k) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k[len(k)-8:])
}
