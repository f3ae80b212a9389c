package config

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in the config file. Line and Column start at 1; a zero
// Line means the place is unknown (a default, or a missing key).
type Pos struct {
	Line, Column int
}

// Error is one thing wrong with a config file.
type Error struct {
	File string
	Pos  Pos
	// Path is the key path, such as "routes[1].timeouts.idle".
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Pos.Line, e.Pos.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every error found in one config file, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// positions records where each key path's value sits in the file.
type positions map[string]Pos

// lookup returns the position of path, or of its nearest parent that the
// file wrote, so an error about a missing key points at its enclosing
// block.
func (p positions) lookup(path string) Pos {
	for path != "" {
		if pos, ok := p[path]; ok {
			return pos
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return Pos{}
}
