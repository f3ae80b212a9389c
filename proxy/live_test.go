package proxy

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

func timedExchange(live *liveSet, idle, total time.Duration) *exchange {
	return newExchange(context.Background(), live, &route{idle: idle, total: total}, httptest.NewRecorder(), time.Now())
}

func listOf(live *liveSet, ex *exchange) int32 {
	live.mu.Lock()
	defer live.mu.Unlock()
	return ex.lslot
}

// waitExpired waits for ex to end and returns after how long since from.
func waitExpired(t *testing.T, ex *exchange, from time.Time, within time.Duration) time.Duration {
	t.Helper()
	select {
	case <-ex.Done():
		return time.Since(from)
	case <-time.After(within):
		t.Fatalf("exchange not ended within %s", within)
		return 0
	}
}

// lateBy is how late the wheel may act: a tick, plus scheduling delay on
// a loaded machine (the race detector).
const lateBy = wheelTick + 100*time.Millisecond

// TestDeadline pins down when an exchange is next looked at and which
// timeout ends it.
func TestDeadline(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		name        string
		idle, total time.Duration
		header      time.Duration
		lastActive  time.Duration
		headersIn   bool
		bodyDone    bool
		now, wantAt time.Duration
		wantReason  closeReason
	}{
		{name: "no timeouts", now: 100 * s, wantAt: -1},
		{name: "idle from start", idle: 5 * s, now: 0, wantAt: 5 * s},
		{name: "idle from last activity", idle: 5 * s, lastActive: 3 * s, now: 6 * s, wantAt: 8 * s},
		{name: "idle passed", idle: 5 * s, lastActive: 3 * s, now: 8 * s, wantReason: reasonIdleTimeout},
		{name: "waiting for headers is not idle", idle: 5 * s, bodyDone: true, now: 9 * s, wantAt: 14 * s},
		{name: "body still coming is idle", idle: 5 * s, now: 9 * s, wantReason: reasonIdleTimeout},
		{name: "after headers is idle", idle: 5 * s, headersIn: true, bodyDone: true, now: 9 * s, wantReason: reasonIdleTimeout},
		{name: "total first", idle: 5 * s, total: 7 * s, lastActive: 4 * s, now: 6 * s, wantAt: 7 * s},
		{name: "idle first", idle: 5 * s, total: 70 * s, lastActive: 4 * s, now: 6 * s, wantAt: 9 * s},
		{name: "total passed", idle: 5 * s, total: 7 * s, lastActive: 7 * s, now: 7 * s, wantReason: reasonTotalTimeout},
		{name: "total only", total: 7 * s, now: 6 * s, wantAt: 7 * s},
		{name: "header first", header: 3 * s, idle: 5 * s, total: 7 * s, now: 1 * s, wantAt: 3 * s},
		{name: "header passed", header: 3 * s, idle: 5 * s, bodyDone: true, now: 3 * s, wantReason: reasonHeaderTimeout},
		{name: "header in", header: 3 * s, idle: 5 * s, headersIn: true, lastActive: 2 * s, now: 4 * s, wantAt: 7 * s},
		{name: "header in, no other timeout", header: 3 * s, headersIn: true, now: 4 * s, wantAt: -1},
		{name: "total before header", header: 3 * s, total: 2 * s, now: 3 * s, wantReason: reasonTotalTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &exchange{rt: &route{idle: tc.idle, total: tc.total, responseHeader: tc.header}}
			ex.lastActive.Store(int64(tc.lastActive))
			ex.headersIn.Store(tc.headersIn)
			ex.requestBodyDone.Store(tc.bodyDone)
			at, reason := ex.deadline(tc.now)
			if reason != tc.wantReason || (reason == "" && at != tc.wantAt) {
				t.Fatalf("deadline = %s, %q; want %s, %q", at, reason, tc.wantAt, tc.wantReason)
			}
		})
	}
}

// TestWheelIdle: activity keeps an exchange open; once it stops, the
// exchange ends idle_timeout about idle later, not before.
func TestWheelIdle(t *testing.T) {
	var live liveSet
	defer live.abort()
	const idle = 200 * time.Millisecond
	ex := timedExchange(&live, idle, 0)
	defer ex.finish(&live)
	for range 8 { // 400 ms of activity, twice the idle time
		time.Sleep(50 * time.Millisecond)
		ex.touch()
		if ex.Err() != nil {
			t.Fatal("an active exchange was ended")
		}
	}
	last := ex.start.Add(time.Duration(ex.lastActive.Load()))
	got := waitExpired(t, ex, last, 5*time.Second)
	if got < idle || got > idle+lateBy {
		t.Fatalf("ended %s after the last activity, want %s (+ up to %s)", got, idle, lateBy)
	}
	if r := ex.expiredReason(); r != reasonIdleTimeout {
		t.Fatalf("reason %q, want idle_timeout", r)
	}
}

// TestWheelTotal: total ends an active exchange about total after its
// start.
func TestWheelTotal(t *testing.T) {
	var live liveSet
	defer live.abort()
	const total = 300 * time.Millisecond
	ex := timedExchange(&live, 100*time.Millisecond, total)
	defer ex.finish(&live)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				ex.touch()
			}
		}
	}()
	got := waitExpired(t, ex, ex.start, 5*time.Second)
	if got < total || got > total+lateBy {
		t.Fatalf("ended %s after start, want %s (+ up to %s)", got, total, lateBy)
	}
	if r := ex.expiredReason(); r != reasonTotalTimeout {
		t.Fatalf("reason %q, want total_timeout", r)
	}
}

// TestWheelRoutesDiffer: exchanges of routes with different timeouts
// share the wheel and each keeps its own; a finished exchange is never
// ended, and one without timeouts waits until it finishes.
func TestWheelRoutesDiffer(t *testing.T) {
	var live liveSet
	defer live.abort()
	short := timedExchange(&live, 100*time.Millisecond, 0)
	long := timedExchange(&live, time.Hour, 0)
	finished := timedExchange(&live, 100*time.Millisecond, 0)
	none := timedExchange(&live, 0, 0)
	waiting := timedExchange(&live, 100*time.Millisecond, 0)
	waiting.requestBodyDone.Store(true) // response_header's job, not idle's
	finished.finish(&live)
	waitExpired(t, short, short.start, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	for name, ex := range map[string]*exchange{"idle 1h": long, "finished": finished, "untimed": none, "waiting for headers": waiting} {
		if r := ex.expiredReason(); r != "" {
			t.Errorf("%s exchange ended %q", name, r)
		}
		ex.finish(&live)
	}
	short.finish(&live)
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.timed != 0 || live.untimed != nil {
		t.Fatalf("%d exchanges left in the wheel after finish", live.timed)
	}
}

// TestWheelFullSlot: exchanges opened together, more than a batch, all
// end on time.
func TestWheelFullSlot(t *testing.T) {
	var live liveSet
	defer live.abort()
	const idle = 100 * time.Millisecond
	start := time.Now()
	exs := make([]*exchange, 3*wheelBatch+7)
	for i := range exs {
		exs[i] = newExchange(context.Background(), &live, &route{idle: idle}, httptest.NewRecorder(), start)
	}
	for i, ex := range exs {
		if got := waitExpired(t, ex, start, 5*time.Second); got > idle+2*lateBy {
			t.Fatalf("exchange %d ended after %s, want about %s", i, got, idle)
		}
		ex.finish(&live)
	}
}

// TestWheelFarDeadline: a deadline beyond one turn waits in the turn's
// last slot and is moved on from there, not ended.
func TestWheelFarDeadline(t *testing.T) {
	var live liveSet
	defer live.abort()
	ex := timedExchange(&live, time.Hour, 0)
	defer ex.finish(&live)
	live.mu.Lock()
	last := live.last
	want := slotBase + int32((last+wheelSlots-1)%wheelSlots)
	got := ex.lslot
	live.mu.Unlock()
	if got != want {
		t.Fatalf("in list %d, want %d (the turn's last slot)", got, want)
	}
	live.sweep(last+wheelSlots-1, nil)
	live.mu.Lock()
	moved := ex.lslot
	live.mu.Unlock()
	if ex.Err() != nil || moved == notLive || moved == got {
		t.Fatalf("after its slot's sweep: ended %v, list %d (was %d)", ex.Err(), moved, got)
	}
}

// TestWheelSweeperStops: the sweeper goroutine runs only while the wheel
// holds exchanges, starts again for a new one, and stops with abort.
func TestWheelSweeperStops(t *testing.T) {
	var live liveSet
	running := func() bool {
		live.mu.Lock()
		defer live.mu.Unlock()
		return live.running
	}
	waitStopped := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); running(); {
			if time.Now().After(deadline) {
				t.Fatalf("sweeper still running %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ex := timedExchange(&live, time.Minute, 0)
	if !running() {
		t.Fatal("no sweeper for a timed exchange")
	}
	ex.finish(&live)
	waitStopped("after the last exchange finished")
	ex = timedExchange(&live, time.Minute, 0)
	if !running() {
		t.Fatal("sweeper not started again")
	}
	for _, open := range live.abort() {
		open.expire(reasonShutdown)
	}
	waitStopped("after abort")
	if ex.expiredReason() != reasonShutdown {
		t.Fatalf("abort left the timed exchange open")
	}
	ex.finish(&live)
}

// TestWheelResponseHeader: response_header ends an exchange whose head
// does not come in time, and once the head is in, an exchange with no
// other timeout leaves the wheel for the untimed list.
func TestWheelResponseHeader(t *testing.T) {
	var live liveSet
	defer live.abort()
	const rh = 150 * time.Millisecond
	start := time.Now()
	late := newExchange(context.Background(), &live, &route{responseHeader: rh}, httptest.NewRecorder(), start)
	defer late.finish(&live)
	onTime := newExchange(context.Background(), &live, &route{responseHeader: rh}, httptest.NewRecorder(), start)
	defer onTime.finish(&live)
	onTime.gotHeaders()
	got := waitExpired(t, late, start, 5*time.Second)
	if got < rh || got > rh+lateBy {
		t.Fatalf("ended %s after start, want %s (+ up to %s)", got, rh, lateBy)
	}
	if r := late.expiredReason(); r != reasonHeaderTimeout {
		t.Fatalf("reason %q, want header_timeout", r)
	}
	for deadline := time.Now().Add(5 * time.Second); listOf(&live, onTime) != untimedAt; {
		if time.Now().After(deadline) {
			t.Fatal("an exchange with its head in and no other timeout stayed in the wheel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := onTime.expiredReason(); r != "" {
		t.Fatalf("exchange with its head in time ended %q", r)
	}
}
