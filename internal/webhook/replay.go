package webhook

import (
	"container/heap"
	"sync"
)

// replaySet remembers svix-ids until their expiry. It is bounded: when it
// holds max unexpired ids it refuses new ones rather than forget one whose
// replay would then pass.
type replaySet struct {
	mu  sync.Mutex
	max int
	ids map[string]int64 // id → expiry, Unix ns
	q   expiryQueue      // the same ids, soonest expiry first
}

func newReplaySet(max int) *replaySet {
	return &replaySet{max: max, ids: make(map[string]int64)}
}

// add records id until expiry, as of now. It fails with ErrDuplicate if id
// is held and unexpired, and with ErrBusy if the set is full. Check and
// record are one step: of concurrent adds of one id, exactly one succeeds.
func (r *replaySet) add(id string, expiry, now int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.q) > 0 && r.q[0].expiry <= now {
		e := heap.Pop(&r.q).(queued)
		if r.ids[e.id] == e.expiry {
			delete(r.ids, e.id)
		}
	}
	if until, ok := r.ids[id]; ok && now < until {
		return ErrDuplicate
	}
	if len(r.ids) >= r.max {
		return ErrBusy
	}
	r.ids[id] = expiry
	heap.Push(&r.q, queued{id: id, expiry: expiry})
	return nil
}

// forget drops id, so that its next delivery is accepted as new. Its place
// in the expiry queue stays until it expires: add and the drain above only
// delete an id whose recorded expiry matches, and forget is rare (a write
// that failed), so the queue stays near the set's size.
func (r *replaySet) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ids, id)
}

func (r *replaySet) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

type queued struct {
	id     string
	expiry int64
}

// expiryQueue is a min-heap of ids by expiry.
type expiryQueue []queued

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].expiry < q[j].expiry }
func (q expiryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryQueue) Push(x any)        { *q = append(*q, x.(queued)) }
func (q *expiryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}
