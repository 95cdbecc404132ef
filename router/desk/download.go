package desk

import (
	"cmp"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// raw sends the ticket's raw mail ("show original") as a download; the
// store records the view in the ticket's history.
func (s *Server) raw(w http.ResponseWriter, r *http.Request, q *request) {
	rec, _, ok := s.load(w, r, q)
	if !ok {
		return
	}
	body, size, err := s.store.Raw(r.Context(), q.actor, rec.ID)
	if err != nil {
		s.fail(w, r, "raw mail", err)
		return
	}
	defer body.Close()
	if size >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	s.download(w, cmp.Or(rec.Number, "ticket")+".eml", body)
}

// attachment sends one attachment of the ticket's mail as a download,
// whatever its declared type: the browser never renders it.
func (s *Server) attachment(w http.ResponseWriter, r *http.Request, q *request) {
	rec, t, ok := s.load(w, r, q)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(t.Attachments) {
		s.errorPage(w, r, http.StatusNotFound, "No such attachment.")
		return
	}
	name, _, body, err := s.store.Attachment(r.Context(), q.actor, rec.ID, n)
	if err != nil {
		s.fail(w, r, "attachment", err)
		return
	}
	defer body.Close()
	s.download(w, safeFilename(name, fmt.Sprintf("attachment-%d.bin", n+1)), body)
}

// download streams body as an attachment the browser saves, never shows.
func (s *Server) download(w http.ResponseWriter, filename string, body io.Reader) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	if _, err := io.Copy(w, body); err != nil {
		s.opts.Logger.Warn("desk: download", "err", err)
	}
}

// safeFilename keeps the last path element of name with only ASCII
// letters, digits, '.', '-' and '_' (others become '_'), no leading dot,
// at most 100 bytes; fallback when nothing is left.
func safeFilename(name, fallback string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if len(out) > 100 {
		out = out[len(out)-100:]
	}
	if strings.Trim(out, "_.") == "" {
		return fallback
	}
	return out
}
