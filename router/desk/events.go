package desk

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// countEvent is one queue's counts as the board's script reads them.
type countEvent struct {
	Queue   string `json:"queue"`
	Waiting int    `json:"waiting"`
	Owned   int    `json:"owned"`
	Oldest  string `json:"oldest"`
	SLA     string `json:"sla"`
}

// events streams the counts of the agent's queues as server-sent events
// (event "counts", a JSON list), at once and then every EventInterval,
// until the client goes.
func (s *Server) events(w http.ResponseWriter, r *http.Request, q *request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(s.opts.EventInterval)
	defer tick.Stop()
	for {
		rows, err := s.visibleQueues(r, q.agent)
		if err != nil {
			s.opts.Logger.Warn("desk: live counts", "err", err)
		} else {
			list := make([]countEvent, len(rows))
			for i, c := range rows {
				list[i] = countEvent{c.Queue, c.Waiting, c.Owned, age(c.OldestWaiting), c.SLA}
			}
			b, _ := json.Marshal(list) // plain strings and ints
			if _, err := fmt.Fprintf(w, "event: counts\ndata: %s\n\n", b); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}
