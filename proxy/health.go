package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// startChecks runs the pool's active health checks, one goroutine per
// backend, until stop is called. The first check runs at once, so a
// backend that is down at start never gets a request.
func (pl *pool) startChecks() {
	if pl.health.Path == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, b := range pl.backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pl.checkLoop(ctx, b)
		}()
	}
	pl.stop = func() { cancel(); wg.Wait() }
}

func (pl *pool) checkLoop(ctx context.Context, b *backend) {
	t := time.NewTicker(pl.health.Interval.D())
	defer t.Stop()
	for {
		err := pl.check(ctx, b)
		if ctx.Err() != nil {
			return
		}
		wasDown := b.checkDown.Swap(err != nil)
		addr := b.up.name
		switch {
		case err != nil && !wasDown:
			pl.log.Warn("backend down", zap.String("route", pl.name), zap.String("upstream", addr),
				zap.String("check", "active"), zap.String("error", err.Error()))
		case err == nil && wasDown:
			pl.log.Info("backend up", zap.String("route", pl.name), zap.String("upstream", addr))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check sends one GET for the health path and wants the expected status
// within the timeout.
func (pl *pool) check(ctx context.Context, b *backend) error {
	ctx, cancel := context.WithTimeout(ctx, pl.health.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.up.urlHost+pl.health.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "sluice-health-check")
	res, err := b.up.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	// Read a little so the connection can go back to the pool.
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode != pl.health.ExpectStatus {
		return fmt.Errorf("status %d, want %d", res.StatusCode, pl.health.ExpectStatus)
	}
	return nil
}
