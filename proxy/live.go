package proxy

import "sync"

// liveSet is the set of open exchanges, which Abort ends. It is an
// intrusive list (exchange.prev and next) so that registering an exchange
// allocates nothing; a context.AfterFunc per exchange in a shutdown
// context cost a quiet stream a hook context and a map entry.
type liveSet struct {
	mu      sync.Mutex
	head    *exchange
	aborted bool
}

// add registers ex; it reports false, and does not register it, once the
// set was aborted.
func (s *liveSet) add(ex *exchange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		return false
	}
	ex.next = s.head
	if s.head != nil {
		s.head.prev = ex
	}
	s.head = ex
	return true
}

// remove unregisters ex if it is registered.
func (s *liveSet) remove(ex *exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ex.prev == nil && s.head != ex {
		return
	}
	if ex.prev != nil {
		ex.prev.next = ex.next
	} else {
		s.head = ex.next
	}
	if ex.next != nil {
		ex.next.prev = ex.prev
	}
	ex.prev, ex.next = nil, nil
}

// abort empties the set for good and returns what it held.
func (s *liveSet) abort() []*exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aborted = true
	var all []*exchange
	for ex := s.head; ex != nil; {
		next := ex.next
		ex.prev, ex.next = nil, nil
		all = append(all, ex)
		ex = next
	}
	s.head = nil
	return all
}
