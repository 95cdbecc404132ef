package desk

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
)

// parseTemplates parses each page with the layout.
func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{
		"age": age,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "–"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
	}
	s.pages = map[string]*template.Template{}
	for _, p := range []string{"login", "board", "ticket", "search", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return fmt.Errorf("parse template %s: %w", p, err)
		}
		s.pages[p] = t
	}
	return nil
}

// page is what the layout reads.
type page struct {
	Title string
	Agent *Agent
	CSRF  string
	Data  any
}

// render writes a page, or a 500 when it cannot be rendered (the page is
// rendered to a buffer first, so that a failure does not send half of it).
func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	var b bytes.Buffer
	if err := s.pages[name].Execute(&b, p); err != nil {
		s.opts.Logger.Error("desk: render "+name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, status, "error", page{Title: http.StatusText(status), Data: msg})
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login", page{Title: "Sign in"})
}

// login signs an agent in; a failure says no more than that it failed,
// whatever the reason (unknown agent, wrong password, locked out).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	name, pw := r.PostFormValue("name"), r.PostFormValue("password")
	if err := s.auth.Login(w, r, name, pw); err != nil {
		s.render(w, http.StatusUnauthorized, "login", page{Title: "Sign in", Data: "Sign-in failed."})
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, q *request) {
	if err := s.auth.Logout(w, r); err != nil {
		s.opts.Logger.Warn("desk: logout", "err", err)
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// queueRow is one queue on the board.
type queueRow struct {
	QueueCount
	SLA string // "", "amber" or "red"
}

// boardData is the board page.
type boardData struct {
	Queues []queueRow
	Mine   []Record
	Notice string
}

// visibleQueues returns the counts of the queues the agent may see.
func (s *Server) visibleQueues(r *http.Request, a *Agent) ([]queueRow, error) {
	counts, err := s.store.Board(r.Context())
	if err != nil {
		return nil, err
	}
	var out []queueRow
	for _, c := range counts {
		if !a.sees(c.Queue) {
			continue
		}
		row := queueRow{QueueCount: c}
		switch {
		case c.Waiting > 0 && c.OldestWaiting >= s.opts.SLARed:
			row.SLA = "red"
		case c.Waiting > 0 && c.OldestWaiting >= s.opts.SLAAmber:
			row.SLA = "amber"
		}
		out = append(out, row)
	}
	return out, nil
}

func (s *Server) board(w http.ResponseWriter, r *http.Request, q *request) {
	queues, err := s.visibleQueues(r, q.agent)
	if err != nil {
		s.fail(w, r, "board", err)
		return
	}
	mine, err := s.store.Mine(r.Context(), q.agent.Name)
	if err != nil {
		s.fail(w, r, "my tickets", err)
		return
	}
	d := boardData{Queues: queues, Mine: s.visible(q.agent, mine)}
	if e := r.URL.Query().Get("empty"); e != "" {
		d.Notice = "Nothing is waiting in " + e + "."
	}
	s.render(w, http.StatusOK, "board", page{Title: "Board", Agent: q.agent, CSRF: q.session.CSRF, Data: d})
}

// visible keeps the records of queues the agent may see.
func (s *Server) visible(a *Agent, recs []Record) []Record {
	return slices.DeleteFunc(slices.Clone(recs), func(rec Record) bool { return !a.seesRecord(&rec) })
}

// take gives the agent the oldest ticket of a queue it may see.
func (s *Server) take(w http.ResponseWriter, r *http.Request, q *request) {
	queue := r.PathValue("queue")
	if !q.agent.sees(queue) {
		s.errorPage(w, r, http.StatusForbidden, "You may not take tickets from that queue.")
		return
	}
	rec, _, err := s.store.TakeNext(r.Context(), q.actor, queue)
	if err != nil {
		if errors.Is(err, ErrNoTicket) {
			http.Redirect(w, r, "/?empty="+url.QueryEscape(queue), http.StatusSeeOther)
			return
		}
		s.fail(w, r, "take next", err)
		return
	}
	http.Redirect(w, r, "/t/"+rec.Number, http.StatusSeeOther)
}

// load reads a ticket the agent may see: 404 when there is none, 403
// when its queue is not the agent's. ok is false when it answered.
func (s *Server) load(w http.ResponseWriter, r *http.Request, q *request) (*Record, *ticket.Ticket, bool) {
	rec, t, err := s.store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "get ticket", err)
		return nil, nil, false
	}
	if !q.agent.seesRecord(rec) { // the record decides: a transferred ticket is its new colour's
		s.errorPage(w, r, http.StatusForbidden, "This ticket is in a queue you may not see.")
		return nil, nil, false
	}
	if t == nil {
		t = &ticket.Ticket{}
	}
	return rec, t, true
}

// ticketData is the ticket page.
type ticketData struct {
	Rec      *Record
	T        *ticket.Ticket
	Never    []string // the rules that say never or do not
	Guidance []string // the rest
	Checks   []checkRow
	Spoof    []string
	Related  []Record
	// Conversation is the ticket's conversation, oldest first, when it
	// has more than this ticket.
	Conversation []Record
	History      []Event
	Owner        bool // the agent owns the ticket and may act on it
	Outcomes     []string
	Colours      []string // where it may be transferred
	Agents       []string // whom a supervisor may reassign it to
	// Drafts are the replies the owner may send; Sent the mail sent on
	// the conversation's tickets (nil without replies); Timeline the
	// conversation's mails in and out, in order.
	Drafts   []draft
	Sent     []sentMail
	Timeline []turn
}

type checkRow struct {
	Name, Reason string
	OK           bool
}

func (s *Server) ticketPage(w http.ResponseWriter, r *http.Request, q *request) {
	rec, t, ok := s.load(w, r, q)
	if !ok {
		return
	}
	hist, err := s.store.History(r.Context(), rec.ID)
	if err != nil {
		s.fail(w, r, "history", err)
		return
	}
	rel, err := s.store.Related(r.Context(), rec.ID)
	if err != nil {
		s.fail(w, r, "related", err)
		return
	}
	conv, err := s.store.Conversation(r.Context(), rec.ID)
	if err != nil {
		s.fail(w, r, "conversation", err)
		return
	}
	if len(conv) < 2 {
		conv = nil
	}
	d := ticketData{Rec: rec, T: t, History: hist, Outcomes: outcomes, Conversation: s.visible(q.agent, conv),
		Related: slices.DeleteFunc(s.visible(q.agent, rel), func(o Record) bool { return o.ID == rec.ID }),
		Owner:   rec.Owner == q.agent.Name && rec.State == "owned" || q.agent.Supervisor && rec.Queue == s.opts.EscalationQueue && rec.State != "resolved"}
	for i, g := range t.Guidance {
		if slices.Contains(t.GuidanceNever, i) {
			d.Never = append(d.Never, g)
		} else {
			d.Guidance = append(d.Guidance, g)
		}
	}
	c := t.Checks
	d.Checks = []checkRow{
		{"Sender authenticated", c.SenderAuthenticated.Reason, c.SenderAuthenticated.OK},
		{"Sender is the admin", c.SenderIsAdmin.Reason, c.SenderIsAdmin.OK},
		{"Sender is the partner's admin", c.SenderIsPartnerAdmin.Reason, c.SenderIsPartnerAdmin.OK},
		{"Domain named", c.DomainNamed.Reason, c.DomainNamed.OK},
		{"Order matched", c.OrderMatched.Reason, c.OrderMatched.OK},
		{"Username named", c.UsernameNamed.Reason, c.UsernameNamed.OK},
	}
	if rp := s.opts.Replies; rp != nil {
		if d.Owner && len(t.ID) == 64 {
			d.Drafts = rp.drafts(rec, t, q.agent.Name)
		}
		mails := conv
		if mails == nil {
			mails = []Record{*rec}
		}
		if d.Sent, err = rp.sent(r.Context(), mails); err != nil {
			s.fail(w, r, "sent mail", err)
			return
		}
	}
	if len(d.Conversation) > 0 || len(d.Sent) > 0 {
		d.Timeline = timeline(d.Conversation, d.Sent, rec.ID)
	}
	d.Spoof = spoofSignals(t)
	d.Colours = slices.DeleteFunc(transferColours(), func(c string) bool { return c == rec.Queue })
	if q.agent.Supervisor && rec.State != "resolved" {
		for _, a := range s.auth.Agents() {
			if a.Name != rec.Owner {
				d.Agents = append(d.Agents, a.Name)
			}
		}
	}
	title := cmp.Or(rec.Number, "Ticket")
	s.render(w, http.StatusOK, "ticket", page{Title: title, Agent: q.agent, CSRF: q.session.CSRF, Data: d})
}

// spoofSignals lists what suggests the sender is not who they seem.
func spoofSignals(t *ticket.Ticket) []string {
	var out []string
	if t.From.Problem != "" {
		out = append(out, "The From header is ambiguous: "+t.From.Problem)
	}
	if strings.Contains(t.From.Name, "@") {
		out = append(out, "The display name shows an address: "+t.From.Name)
	}
	for _, rt := range t.ReplyTo {
		if !strings.EqualFold(rt, t.From.Address) {
			out = append(out, "Reply-To differs from the sender: "+rt)
		}
	}
	if !t.Checks.SenderAuthenticated.OK {
		out = append(out, "The sender is not authenticated.")
	}
	if c := t.Conversation; c != nil && !c.Joined {
		out = append(out, "Threading: "+c.Reason+".")
	}
	if t.KeyExposed {
		out = append(out, "A private key or PFX was sent by mail.")
	}
	return out
}

// act runs an action on a ticket the agent may see.
func (s *Server) act(w http.ResponseWriter, r *http.Request, q *request) {
	rec, t, ok := s.load(w, r, q)
	if !ok {
		return
	}
	ctx, id := r.Context(), rec.ID
	back := "/"
	form := func(key string) string { return strings.TrimSpace(r.PostFormValue(key)) }
	var err error
	var bad string // what is wrong with the form
	switch action := r.PathValue("action"); action {
	case "resolve":
		if o := form("outcome"); !slices.Contains(outcomes, o) {
			bad = "Choose an outcome."
		} else {
			err = s.store.Resolve(ctx, q.actor, id, o, form("note"))
		}
	case "return":
		err = s.store.Return(ctx, q.actor, id)
	case "escalate":
		if reason := form("reason"); reason == "" {
			bad = "Say why the ticket is escalated."
		} else {
			err = s.store.Escalate(ctx, q.actor, id, reason)
		}
	case "transfer":
		if c := form("colour"); !slices.Contains(transferColours(), c) {
			bad = "Choose a colour to transfer to."
		} else {
			err = s.store.Transfer(ctx, q.actor, id, c)
		}
	case "reassign":
		to := form("to")
		switch {
		case !q.agent.Supervisor:
			s.errorPage(w, r, http.StatusForbidden, "Only a supervisor reassigns tickets.")
			return
		case !slices.ContainsFunc(s.auth.Agents(), func(a *Agent) bool { return a.Name == to }):
			bad = "Choose an agent to reassign to."
		default:
			err = s.store.Reassign(ctx, q.actor, id, to)
		}
	case "reply":
		var refused *errReply
		if err = s.reply(ctx, r, q, rec, t); errors.As(err, &refused) {
			bad, err = refused.msg, nil
		}
		back = "/t/" + url.PathEscape(cmp.Or(rec.Number, rec.ID))
	case "note":
		if text := form("note"); text == "" {
			bad = "The note is empty."
		} else {
			err = s.store.Note(ctx, q.actor, id, text)
		}
		back = "/t/" + url.PathEscape(cmp.Or(rec.Number, rec.ID))
	default:
		s.errorPage(w, r, http.StatusNotFound, "No such action.")
		return
	}
	if bad != "" {
		s.errorPage(w, r, http.StatusBadRequest, bad)
		return
	}
	if err != nil {
		s.fail(w, r, "ticket action", err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// transferColours are the queues a ticket may be transferred to: the
// account colours and unknown.
func transferColours() []string {
	return append(slices.Clone(accounts.Colours), rules.ColourUnknown)
}

// searchData is the search page.
type searchData struct {
	Q       string
	Results []Record
	Hidden  int // results in queues the agent may not see
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, q *request) {
	d := searchData{Q: strings.TrimSpace(r.URL.Query().Get("q"))}
	if d.Q != "" {
		res, err := s.store.Search(r.Context(), d.Q)
		if err != nil {
			s.fail(w, r, "search", err)
			return
		}
		d.Results = s.visible(q.agent, res)
		d.Hidden = len(res) - len(d.Results)
	}
	s.render(w, http.StatusOK, "search", page{Title: "Search", Agent: q.agent, CSRF: q.session.CSRF, Data: d})
}

// age shows a duration as agents read it: 45s, 12m, 3h05m, 2d4h.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
