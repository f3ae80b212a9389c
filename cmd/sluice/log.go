package main

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/sluiceproxy/sluice/config"
)

// newLogger builds the process logger: JSON or console lines on out, at
// the level held by level (changed on reload). When out is the journal
// (systemd's JOURNAL_STREAM names it), lines carry no timestamp — the
// journal keeps its own — and start with a <N> syslog priority prefix,
// which journald turns into the entry's PRIORITY.
func newLogger(c config.Log, level zap.AtomicLevel, out io.Writer) (*zap.Logger, error) {
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, err
	}
	journal := isJournalStream(out)
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	if journal {
		encCfg.TimeKey = zapcore.OmitKey
	}
	var enc zapcore.Encoder
	if c.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	if journal {
		enc = priorityEncoder{enc}
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), level)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(out)))), nil
}

// isJournalStream reports whether out is the stream systemd connected to
// the journal: JOURNAL_STREAM holds its device and inode numbers.
func isJournalStream(out io.Writer) bool {
	env := os.Getenv("JOURNAL_STREAM")
	f, ok := out.(*os.File)
	if env == "" || !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && env == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// priorityEncoder prefixes each line with its syslog priority, <3> for
// errors to <7> for debug.
type priorityEncoder struct{ zapcore.Encoder }

var prefixPool = buffer.NewPool()

func (e priorityEncoder) Clone() zapcore.Encoder { return priorityEncoder{e.Encoder.Clone()} }

func (e priorityEncoder) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	line, err := e.Encoder.EncodeEntry(ent, fields)
	if err != nil {
		return nil, err
	}
	out := prefixPool.Get()
	out.AppendString(syslogPriority(ent.Level))
	out.Write(line.Bytes())
	line.Free()
	return out, nil
}

func syslogPriority(l zapcore.Level) string {
	switch {
	case l <= zapcore.DebugLevel:
		return "<7>"
	case l == zapcore.InfoLevel:
		return "<6>"
	case l == zapcore.WarnLevel:
		return "<4>"
	case l == zapcore.ErrorLevel:
		return "<3>"
	}
	return "<2>"
}
