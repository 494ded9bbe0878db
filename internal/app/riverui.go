package app

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"riverqueue.com/riverui"
)

// riverUIPrefix is where River's UI is mounted (admin only, httpapi/authz.go).
const riverUIPrefix = "/admin/river"

// riverUI serves River's web UI over the pod's River client, so that an
// operator sees the sweep and partition jobs. Its background work (cached
// job counts, refreshed every few seconds) starts with the first request: a
// pod nobody looks at pays nothing for it.
type riverUI struct {
	h      *riverui.Handler
	ctx    context.Context
	stop   context.CancelFunc
	starts sync.Once
}

// newRiverUI builds the UI, or returns nil when the pod runs no River.
func (a *App) newRiverUI() (*riverUI, error) {
	if a.river == nil {
		return nil, nil
	}
	logger := slog.Default().With("component", "riverui")
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(a.river, nil),
		Logger:    logger,
		Prefix:    riverUIPrefix,
		// Job args are empty structs here, but a job's args are data: show
		// them only on demand.
		JobListHideArgsByDefault: true,
	})
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	return &riverUI{h: h, ctx: ctx, stop: stop}, nil
}

func (u *riverUI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.starts.Do(func() {
		if err := u.h.Start(u.ctx); err != nil {
			slog.WarnContext(r.Context(), "River UI: start failed", "error", err)
		}
	})
	u.h.ServeHTTP(w, r)
}

// close stops the UI's background work; it is idempotent and nil-safe.
func (u *riverUI) close() {
	if u != nil {
		u.stop()
	}
}
