package router

import (
	"net/http"
	"net/http/pprof"
)

// debugHandler serves Go's profiles, as nats-server's prof_port does: where
// a replica's time and memory go, without a restart. It is served on the
// opt-in debug listener only (debug.listen), never on the probe port: a
// profile costs CPU while it runs and /debug/pprof/cmdline shows the
// command line.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
