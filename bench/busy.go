package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// busyWatch notes CPU time used during the run by processes that are not
// the bench's own (the machine may be shared), so the report can say so.
type busyWatch struct {
	mu    sync.Mutex
	first map[int]procCPU
	last  map[int]procCPU
	ours  map[int]bool
	self  int
	tick  float64
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

type procCPU struct {
	comm  string
	ppid  int
	ticks int64
}

func newBusyWatch() *busyWatch {
	w := &busyWatch{ours: map[int]bool{}, self: os.Getpid(), tick: float64(time.Second / clockTick)}
	w.sample()
	return w
}

func readProcs() map[int]procCPU {
	out := map[int]procCPU{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		// After the command: state ppid ... utime(12) stime(13), counting
		// from state as 0.
		if len(f) < 14 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = procCPU{comm: string(b[i+1 : j]), ppid: ppid, ticks: ut + st}
	}
	return out
}

func (w *busyWatch) sample() {
	procs := readProcs()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first == nil {
		w.first = procs
	}
	w.last = procs
	w.ours[w.self] = true
	// Descendants of the bench are ours; repeat until no new one appears.
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if !w.ours[pid] && w.ours[p.ppid] {
				w.ours[pid] = true
				changed = true
			}
		}
	}
}

// report lists other commands that used more than 2 s of CPU, busiest
// first, or "" if none did.
func (w *busyWatch) report() string {
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	byComm := map[string]float64{}
	for pid, p := range w.last {
		if w.ours[pid] {
			continue
		}
		d := p.ticks - w.first[pid].ticks
		if old, ok := w.first[pid]; ok && old.comm != p.comm {
			d = p.ticks
		}
		byComm[p.comm] += float64(d) / w.tick
	}
	type kv struct {
		comm string
		s    float64
	}
	var l []kv
	for c, s := range byComm {
		if s > 2 {
			l = append(l, kv{c, s})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].s > l[j].s })
	var parts []string
	for i, x := range l {
		if i == 8 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f s CPU", x.comm, x.s))
	}
	return strings.Join(parts, ", ")
}
