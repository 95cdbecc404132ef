package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Account is a customer record from the order system (POLICY.md, "Account").
// Emails and domains are kept in canonical form once loaded: lower case,
// domains as IDNA A-labels.
type Account struct {
	ID         string   `json:"id" yaml:"id"`
	Colour     string   `json:"colour" yaml:"colour"`
	Name       string   `json:"name,omitempty" yaml:"name"`
	Username   string   `json:"username,omitempty" yaml:"username"`
	AdminEmail string   `json:"admin_email" yaml:"admin_email"`
	Domains    []string `json:"domains,omitempty" yaml:"domains"`
	Orders     []Order  `json:"orders,omitempty" yaml:"orders"`
	// Partner is the id of the web host, reseller or affiliate account the
	// account came through.
	Partner string `json:"partner,omitempty" yaml:"partner"`
	// DoNotReset marks an account whose password must never be reset.
	DoNotReset bool `json:"do_not_reset,omitempty" yaml:"do_not_reset"`
}

// Order is one order of an account.
type Order struct {
	Number  string `json:"number" yaml:"number"`
	Domain  string `json:"domain,omitempty" yaml:"domain"`
	Product string `json:"product,omitempty" yaml:"product"`
}

// Products an order can be for.
var Products = []string{"ssl", "code-signing", "smime", "client"}

// accountFields are the keys an account record may have.
var accountFields = []string{"id", "colour", "name", "username", "admin_email", "domains", "orders", "partner", "do_not_reset"}

// Directory is the account directory, indexed for the lookups the policy
// needs: by id, order number, admin email, username and domain. It is
// immutable once loaded and safe for concurrent use.
type Directory struct {
	accounts []Account
	byID     map[string]int32
	byOrder  map[string]int32 // lower-cased order number
	byUser   map[string]int32 // lower-cased username
	byAdmin  multiIndex       // canonical admin email
	byDomain multiIndex       // A-label domain, from domains and orders
}

// Len returns the number of accounts.
func (d *Directory) Len() int { return len(d.accounts) }

// Account returns the account with the given id.
func (d *Directory) Account(id string) (*Account, bool) {
	i, ok := d.byID[id]
	if !ok {
		return nil, false
	}
	return &d.accounts[i], true
}

// ByOrder returns the account holding the order number.
func (d *Directory) ByOrder(number string) (*Account, bool) {
	i, ok := d.byOrder[strings.ToLower(number)]
	if !ok {
		return nil, false
	}
	return &d.accounts[i], true
}

// ByUsername returns the account with the username (case-insensitive).
func (d *Directory) ByUsername(name string) (*Account, bool) {
	i, ok := d.byUser[strings.ToLower(name)]
	if !ok {
		return nil, false
	}
	return &d.accounts[i], true
}

// ByAdminEmail returns the accounts whose admin email is addr, compared
// case-insensitively with the domain as an A-label.
func (d *Directory) ByAdminEmail(addr string) []*Account {
	canon, err := canonicalEmail(addr)
	if err != nil {
		return nil
	}
	return d.list(d.byAdmin.get(canon))
}

// ByDomain returns the accounts that hold domain, or the closest parent of
// it that any account holds ("shop.acmecorp.com" finds "acmecorp.com"),
// together with the domain that matched. Look-alikes such as
// "acmecorp.com.evil.example" never match: only parents are tried.
func (d *Directory) ByDomain(domain string) ([]*Account, string) {
	canon, err := canonicalDomain(domain)
	if err != nil {
		return nil, ""
	}
	for name := canon; ; {
		if ids := d.byDomain.get(name); len(ids) > 0 {
			return d.list(ids), name
		}
		dot := strings.IndexByte(name, '.')
		if dot < 0 {
			return nil, ""
		}
		name = name[dot+1:]
	}
}

func (d *Directory) list(ids []int32) []*Account {
	out := make([]*Account, len(ids))
	for i, id := range ids {
		out[i] = &d.accounts[id]
	}
	return out
}

// multiIndex maps a key to one or more account indexes without a slice per
// key in the common case of exactly one: a value v >= 0 is the account,
// v < 0 points at more[-v-1].
type multiIndex struct {
	one  map[string]int32
	more [][]int32
}

func (m *multiIndex) add(key string, id int32) {
	v, ok := m.one[key]
	switch {
	case !ok:
		m.one[key] = id
	case v >= 0:
		if v == id {
			return
		}
		m.more = append(m.more, []int32{v, id})
		m.one[key] = int32(-len(m.more))
	default:
		if l := m.more[-v-1]; !slices.Contains(l, id) {
			m.more[-v-1] = append(l, id)
		}
	}
}

func (m *multiIndex) get(key string) []int32 {
	v, ok := m.one[key]
	switch {
	case !ok:
		return nil
	case v >= 0:
		return []int32{v}
	default:
		return m.more[-v-1]
	}
}

// LoadDirectory reads an account directory: a YAML file with an `accounts:`
// list, or JSON Lines with one account a line (told apart by the first
// character). Every bad record is reported as "file:line: field: problem".
func LoadDirectory(path string) (*Directory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	return ParseDirectory(path, data)
}

// ParseDirectory builds a directory from the contents of an accounts file;
// name is used in error messages.
func ParseDirectory(name string, data []byte) (*Directory, error) {
	var (
		records []record
		err     error
	)
	if first := bytes.TrimLeft(data, " \t\r\n\uFEFF"); len(first) > 0 && first[0] == '{' {
		records, err = decodeJSONLines(name, data)
	} else {
		records, err = decodeYAMLAccounts(name, data)
	}
	if err != nil {
		return nil, err
	}
	return buildDirectory(name, records)
}

// record is an account with the line it was read from.
type record struct {
	Account
	line int
}

// maxReported caps the errors one load reports.
const maxReported = 20

// errorList collects load errors up to maxReported.
type errorList struct {
	msgs  []string
	extra int
}

func (e *errorList) add(format string, args ...any) {
	if len(e.msgs) < maxReported {
		e.msgs = append(e.msgs, fmt.Sprintf(format, args...))
	} else {
		e.extra++
	}
}

func (e *errorList) err() error {
	if len(e.msgs) == 0 {
		return nil
	}
	msg := strings.Join(e.msgs, "\n")
	if e.extra > 0 {
		msg += fmt.Sprintf("\n... and %d more", e.extra)
	}
	return errors.New(msg)
}

// decodeJSONLines decodes one account a line, spreading the work over the
// CPUs: a million accounts must load in a few seconds.
func decodeJSONLines(name string, data []byte) ([]record, error) {
	workers := runtime.GOMAXPROCS(0)
	chunks := splitLines(data, workers*4)
	results := make([][]record, len(chunks))
	errs := make([]errorList, len(chunks))
	var wg sync.WaitGroup
	next := make(chan int, len(chunks))
	for i := range chunks {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = decodeChunk(name, chunks[i], &errs[i])
			}
		}()
	}
	wg.Wait()
	var all errorList
	n := 0
	for i := range chunks {
		n += len(results[i])
		for _, m := range errs[i].msgs {
			all.add("%s", m)
		}
		all.extra += errs[i].extra
	}
	if err := all.err(); err != nil {
		return nil, err
	}
	records := make([]record, 0, n)
	for _, r := range results {
		records = append(records, r...)
	}
	return records, nil
}

// lineChunk is a run of whole lines and the number of its first line.
type lineChunk struct {
	data  []byte
	first int
}

// splitLines cuts data into about n chunks at line ends.
func splitLines(data []byte, n int) []lineChunk {
	var chunks []lineChunk
	size := len(data)/n + 1
	line := 1
	for len(data) > 0 {
		end := min(size, len(data))
		if i := bytes.IndexByte(data[end-1:], '\n'); i >= 0 {
			end += i
		} else {
			end = len(data)
		}
		chunks = append(chunks, lineChunk{data: data[:end], first: line})
		line += bytes.Count(data[:end], []byte{'\n'})
		data = data[end:]
	}
	return chunks
}

func decodeChunk(name string, c lineChunk, errs *errorList) []record {
	records := make([]record, 0, bytes.Count(c.data, []byte{'\n'})+1)
	line := c.first - 1
	for data := c.data; len(data) > 0; {
		var l []byte
		l, data, _ = bytes.Cut(data, []byte{'\n'})
		line++
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		var r record
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r.Account); err != nil {
			errs.add("%s:%d: %s", name, line, jsonError(err))
			continue
		}
		if dec.More() {
			errs.add("%s:%d: more than one JSON value on the line", name, line)
			continue
		}
		r.line = line
		records = append(records, r)
	}
	return records
}

// jsonError names the field of a JSON decoding error.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: want %s, got %s", te.Field, te.Type, te.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Sprintf("%s: unknown field", strings.Trim(f, `"`))
	}
	return strings.TrimPrefix(msg, "json: ")
}

func decodeYAMLAccounts(name string, data []byte) ([]record, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, yamlError(err))
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: no accounts", name)
	}
	doc := root.Content[0]
	var list *yaml.Node
	if doc.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i].Value == "accounts" {
				list = doc.Content[i+1]
			} else {
				return nil, fmt.Errorf("%s:%d: %s: unknown field (want accounts)", name, doc.Content[i].Line, doc.Content[i].Value)
			}
		}
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: accounts: want a list of accounts", name, doc.Line)
	}
	var errs errorList
	records := make([]record, 0, len(list.Content))
	for _, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			errs.add("%s:%d: want an account (a mapping)", name, item.Line)
			continue
		}
		bad := false
		for i := 0; i+1 < len(item.Content); i += 2 {
			if k := item.Content[i]; !slices.Contains(accountFields, k.Value) {
				errs.add("%s:%d: %s: unknown field", name, k.Line, k.Value)
				bad = true
			}
		}
		var r record
		if err := item.Decode(&r.Account); err != nil {
			errs.add("%s: %s", name, yamlError(err))
			continue
		}
		if !bad {
			r.line = item.Line
			records = append(records, r)
		}
	}
	return records, errs.err()
}

// buildDirectory validates the records, puts them in canonical form and
// builds the indexes. Duplicate ids, order numbers and usernames, and
// partners that do not exist, are errors naming both places.
func buildDirectory(name string, records []record) (*Directory, error) {
	var errs errorList
	d := &Directory{
		accounts: make([]Account, 0, len(records)),
		byID:     make(map[string]int32, len(records)),
		byOrder:  make(map[string]int32, len(records)),
		byUser:   make(map[string]int32, len(records)),
		byAdmin:  multiIndex{one: make(map[string]int32, len(records))},
		byDomain: multiIndex{one: make(map[string]int32, len(records))},
	}
	lines := make([]int, 0, len(records))
	for i := range records {
		r := &records[i]
		if field, err := canonicalAccount(&r.Account); err != nil {
			errs.add("%s:%d: %s: %v", name, r.line, field, err)
			continue
		}
		a := &r.Account
		id := int32(len(d.accounts))
		if prev, dup := d.byID[a.ID]; dup {
			errs.add("%s:%d: id: %q already used on line %d", name, r.line, a.ID, lines[prev])
			continue
		}
		ok := true
		for j, o := range a.Orders {
			key := strings.ToLower(o.Number)
			if prev, dup := d.byOrder[key]; dup && prev != id {
				errs.add("%s:%d: orders[%d].number: %q already belongs to account %q (line %d)", name, r.line, j, o.Number, d.accounts[prev].ID, lines[prev])
				ok = false
			}
		}
		if a.Username != "" {
			if prev, dup := d.byUser[strings.ToLower(a.Username)]; dup {
				errs.add("%s:%d: username: %q already belongs to account %q (line %d)", name, r.line, a.Username, d.accounts[prev].ID, lines[prev])
				ok = false
			}
		}
		if !ok {
			continue
		}
		d.byID[a.ID] = id
		for _, o := range a.Orders {
			d.byOrder[strings.ToLower(o.Number)] = id
			if o.Domain != "" {
				d.byDomain.add(o.Domain, id)
			}
		}
		if a.Username != "" {
			d.byUser[strings.ToLower(a.Username)] = id
		}
		d.byAdmin.add(a.AdminEmail, id)
		for _, dom := range a.Domains {
			d.byDomain.add(dom, id)
		}
		d.accounts = append(d.accounts, *a)
		lines = append(lines, r.line)
	}
	for i, a := range d.accounts {
		if a.Partner == "" {
			continue
		}
		switch p, ok := d.byID[a.Partner]; {
		case !ok:
			errs.add("%s:%d: partner: no account has id %q", name, lines[i], a.Partner)
		case int(p) == i:
			errs.add("%s:%d: partner: an account cannot be its own partner", name, lines[i])
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return d, nil
}

// canonicalAccount checks an account and puts its emails and domains in
// canonical form. It returns the offending field on error.
func canonicalAccount(a *Account) (string, error) {
	if a.ID = strings.TrimSpace(a.ID); a.ID == "" {
		return "id", errors.New("missing")
	}
	if !slices.Contains(Colours, a.Colour) {
		if a.Colour == "" {
			return "colour", errors.New("missing")
		}
		return "colour", fmt.Errorf("unknown colour %q (want one of %s)", a.Colour, strings.Join(Colours, ", "))
	}
	if a.AdminEmail == "" {
		return "admin_email", errors.New("missing")
	}
	email, err := canonicalEmail(a.AdminEmail)
	if err != nil {
		return "admin_email", err
	}
	a.AdminEmail = email
	if strings.ContainsAny(a.Username, " \t\r\n") {
		return "username", errors.New("must not contain white space")
	}
	for i, dom := range a.Domains {
		c, err := registrableDomain(dom)
		if err != nil {
			return fmt.Sprintf("domains[%d]", i), err
		}
		a.Domains[i] = c
	}
	for i := range a.Orders {
		o := &a.Orders[i]
		if o.Number = strings.TrimSpace(o.Number); o.Number == "" {
			return fmt.Sprintf("orders[%d].number", i), errors.New("missing")
		}
		if strings.ContainsAny(o.Number, " \t\r\n") {
			return fmt.Sprintf("orders[%d].number", i), errors.New("must not contain white space")
		}
		if o.Domain != "" {
			c, err := registrableDomain(o.Domain)
			if err != nil {
				return fmt.Sprintf("orders[%d].domain", i), err
			}
			o.Domain = c
		}
		if o.Product != "" && !slices.Contains(Products, o.Product) {
			return fmt.Sprintf("orders[%d].product", i), fmt.Errorf("unknown product %q (want one of %s)", o.Product, strings.Join(Products, ", "))
		}
	}
	return "", nil
}
