package proxy

import (
	"sync"
	"time"
)

// The timeouts of every exchange of a Proxy (response_header, idle and
// total) are kept by one hashed timing wheel instead of runtime timers per
// exchange: a quiet stream held a time.AfterFunc timer (about 226 bytes
// live) for its whole life, and every request made and stopped two. An
// exchange waits in the slot of the tick of its next deadline; the
// sweeper visits each tick's slot once, ends the exchanges whose
// timeout has passed and moves the others to the slot of their new
// deadline, so a stream that keeps moving costs one visit per idle period
// and touch stays one atomic store.
const (
	// wheelTick is the wheel's granularity: a timeout is acted on at the
	// first sweep after it passes, so up to one tick (plus scheduling
	// delay) late. It is documented in README.md (timeouts).
	wheelTick = 50 * time.Millisecond
	// wheelSlots ticks make one turn (25.6 s); an exchange whose deadline
	// is further away waits in the slot of the last tick of the turn and
	// is moved on from there.
	wheelSlots = 512
	// wheelBatch bounds the exchanges looked at per hold of the lock, so
	// that a slot full of exchanges opened together does not hold up
	// requests that open or finish meanwhile.
	wheelBatch = 256
)

// An exchange's place in the set (exchange.lslot).
const (
	notLive   = 0 // not in the set
	untimedAt = 1 // in the untimed list: no timeout applies
	slotBase  = 2 // wheel slot i is lslot slotBase+i
)

// liveSet is the set of open exchanges, which Abort ends, and the timing
// wheel that ends them on their timeouts. Each exchange is in one
// intrusive list (exchange.prev and next): a wheel slot, or the untimed
// list when no timeout applies to it (none set on its route, or only
// response_header and the headers arrived). Registering an
// exchange allocates nothing; a context.AfterFunc per exchange in a
// shutdown context cost a quiet stream a hook context and a map entry.
// The zero value is ready to use. The sweeping goroutine runs only while
// the wheel holds exchanges, and stops with abort.
type liveSet struct {
	mu      sync.Mutex
	untimed *exchange
	slots   [wheelSlots]*exchange
	timed   int       // exchanges in slots
	epoch   time.Time // the start of tick 0; set on first use
	last    int64     // the last tick swept (or skipped while the wheel was empty)
	running bool      // the sweeper goroutine runs
	stop    chan struct{}
	aborted bool
}

// expiry is an exchange the sweeper ends, once out of the lock.
type expiry struct {
	ex     *exchange
	reason closeReason
}

// add registers ex and schedules its timeouts; it reports false, and does
// not register it, once the set was aborted.
func (s *liveSet) add(ex *exchange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		return false
	}
	at, _ := ex.deadline(0) // nothing has passed at the start (0 is no timeout)
	if at < 0 {
		s.push(ex, untimedAt)
		return true
	}
	if !s.running {
		// The wheel is empty, so the ticks it skipped while nothing was
		// due need no sweep.
		now := time.Now()
		if s.epoch.IsZero() {
			s.epoch = now
		}
		s.last = max(s.last, s.floorTick(now))
		if s.stop == nil {
			s.stop = make(chan struct{})
		}
		s.running = true
		go s.run(s.stop)
	}
	s.link(ex, ex.start.Add(at))
	return true
}

// remove unregisters ex if it is registered.
func (s *liveSet) remove(ex *exchange) {
	s.mu.Lock()
	s.unlink(ex)
	s.mu.Unlock()
}

// abort empties the set for good, stops the sweeper and returns what the
// set held.
func (s *liveSet) abort() []*exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		return nil
	}
	s.aborted = true
	if s.stop != nil {
		close(s.stop)
	}
	var all []*exchange
	take := func(head **exchange) {
		for ex := *head; ex != nil; {
			next := ex.next
			ex.prev, ex.next, ex.lslot = nil, nil, notLive
			all = append(all, ex)
			ex = next
		}
		*head = nil
	}
	take(&s.untimed)
	for i := range s.slots {
		take(&s.slots[i])
	}
	s.timed = 0
	return all
}

// run is the sweeper: each tick it sweeps the tick's slot, and it returns
// once the wheel is empty or the set is aborted (stop closed).
func (s *liveSet) run(stop chan struct{}) {
	t := time.NewTimer(wheelTick)
	defer t.Stop()
	var due []expiry
	for {
		s.mu.Lock()
		if s.aborted || s.timed == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		cur := s.floorTick(time.Now())
		// More than a turn behind (the process was stopped, or starved):
		// one turn visits every slot.
		from := max(s.last+1, cur-wheelSlots+1)
		s.mu.Unlock()
		for tick := from; tick <= cur; tick++ {
			due = s.sweep(tick, due)
		}
		s.mu.Lock()
		next := s.epoch.Add(time.Duration(cur+1) * wheelTick)
		s.mu.Unlock()
		t.Reset(time.Until(next))
		select {
		case <-t.C:
		case <-stop:
			s.mu.Lock()
			s.running = false
			s.mu.Unlock()
			return
		}
	}
}

// sweep visits the slot of tick, wheelBatch exchanges per hold of the
// lock: each is ended if a timeout passed, else moved to the slot of its
// next deadline. Exchanges are ended out of the lock, since expire closes
// sockets, each on a goroutine of its own. due is a buffer, returned for
// reuse.
func (s *liveSet) sweep(tick int64, due []expiry) []expiry {
	head := &s.slots[tick%wheelSlots]
	for {
		s.mu.Lock()
		// No exchange is linked into the slot being swept (link keeps to
		// the ticks after last), so the loop ends.
		s.last = max(s.last, tick)
		now := time.Now()
		for n := 0; n < wheelBatch && *head != nil; n++ {
			ex := *head
			s.unlink(ex)
			at, reason := ex.deadline(now.Sub(ex.start))
			switch {
			case reason != "":
				due = append(due, expiry{ex, reason})
			case at < 0: // only response_header applied, and the head is in
				s.push(ex, untimedAt)
			default:
				s.link(ex, ex.start.Add(at))
			}
		}
		more := *head != nil
		s.mu.Unlock()
		for _, e := range due {
			// A goroutine each, as a runtime timer's function had and as
			// Abort does: one slow close (a hijacked TLS connection's
			// close_notify to a client that stopped reading) must not hold
			// up the other exchanges' timeouts.
			go e.ex.expire(e.reason)
		}
		clear(due)
		due = due[:0]
		if !more {
			return due
		}
	}
}

// link puts ex in the slot of the first tick at or after when, within the
// turn after the last swept tick. Caller holds mu.
func (s *liveSet) link(ex *exchange, when time.Time) {
	d := when.Sub(s.epoch)
	tick := int64(d / wheelTick)
	if d > time.Duration(tick)*wheelTick {
		tick++
	}
	tick = min(max(tick, s.last+1), s.last+wheelSlots-1)
	s.push(ex, slotBase+int32(tick%wheelSlots))
	s.timed++
}

func (s *liveSet) floorTick(t time.Time) int64 {
	return int64(t.Sub(s.epoch) / wheelTick)
}

func (s *liveSet) list(lslot int32) **exchange {
	if lslot == untimedAt {
		return &s.untimed
	}
	return &s.slots[lslot-slotBase]
}

// push puts ex at the head of list lslot. Caller holds mu.
func (s *liveSet) push(ex *exchange, lslot int32) {
	head := s.list(lslot)
	ex.prev, ex.next, ex.lslot = nil, *head, lslot
	if *head != nil {
		(*head).prev = ex
	}
	*head = ex
}

// unlink takes ex out of its list, if it is in one. Caller holds mu.
func (s *liveSet) unlink(ex *exchange) {
	if ex.lslot == notLive {
		return
	}
	if ex.prev != nil {
		ex.prev.next = ex.next
	} else {
		*s.list(ex.lslot) = ex.next
	}
	if ex.next != nil {
		ex.next.prev = ex.prev
	}
	if ex.lslot >= slotBase {
		s.timed--
	}
	ex.prev, ex.next, ex.lslot = nil, nil, notLive
}
