package projectorcmd

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds one /readyz evaluation.
const readyTimeout = 10 * time.Second

// readyBody is the JSON body of /readyz. It holds check names and reasons only: the reasons are the
// library's redacted texts (never a connection string, a password or a server message).
type readyBody struct {
	Ready  bool        `json:"ready"`
	Checks []readyItem `json:"checks"`
}

type readyItem struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Warning bool   `json:"warning,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// newHandler serves /metrics (reg), /healthz (the process is alive: always 200) and /readyz (200 when
// every check passes, else 503; the body lists the checks).
func newHandler(reg *prometheus.Registry, rd *readiness, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry: reg,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), readyTimeout)
		defer cancel()
		res := rd.check(ctx)
		body := readyBody{Ready: res.Ready, Checks: make([]readyItem, 0, len(res.Checks))}
		for _, c := range res.Checks {
			body.Checks = append(body.Checks, readyItem{Name: c.Name, OK: c.OK, Warning: c.Warning, Reason: c.Reason})
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !res.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
	return mux
}
