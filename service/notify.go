// Package service connects sluice to the service manager: systemd
// readiness, reload and stop notifications (sd_notify), the watchdog, and
// a pid file for `sluice reload` outside systemd.
package service

import (
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// Notifier sends sd_notify messages to systemd when it started sluice
// with NOTIFY_SOCKET (Type=notify); otherwise every call does nothing.
type Notifier struct {
	log      *zap.Logger
	watchdog time.Duration
}

// NewNotifier reads NOTIFY_SOCKET and WATCHDOG_USEC.
func NewNotifier(log *zap.Logger) *Notifier {
	n := &Notifier{log: log}
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("ignoring the systemd watchdog setting", zap.Error(err))
	}
	n.watchdog = wd
	return n
}

// Ready tells systemd sluice is serving (after start, and at the end of
// every reload, failed or not).
func (n *Notifier) Ready(status string) {
	n.send("READY=1\nSTATUS=" + oneLine(status))
}

// Reloading tells systemd a reload began; systemd waits for Ready.
func (n *Notifier) Reloading(status string) {
	n.send("RELOADING=1\n" + daemon.SdNotifyMonotonicUsec() + "STATUS=" + oneLine(status))
}

// Stopping tells systemd sluice is draining and will exit.
func (n *Notifier) Stopping(status string) {
	n.send("STOPPING=1\nSTATUS=" + oneLine(status))
}

// Status updates the one-line status `systemctl status` shows.
func (n *Notifier) Status(status string) {
	n.send("STATUS=" + oneLine(status))
}

// WatchdogInterval is how often to call Watchdog: half of WatchdogSec, or
// 0 when the watchdog is off.
func (n *Notifier) WatchdogInterval() time.Duration { return n.watchdog / 2 }

// Watchdog tells systemd sluice is alive.
func (n *Notifier) Watchdog() { n.send("WATCHDOG=1") }

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("cannot notify systemd", zap.Error(err))
	}
}

// oneLine keeps a status to one line: a newline would start a new
// assignment.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
