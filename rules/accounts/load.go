package accounts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/ticketrouter/ticketrouter/internal/yamlerr"
	"github.com/ticketrouter/ticketrouter/rules/address"
	"github.com/valyala/fastjson"
	"go.yaml.in/yaml/v3"
)

// utf8BOM is the byte order mark some editors write at the start of a file.
var utf8BOM = []byte("\uFEFF")

// LoadDirectory reads an account directory: a YAML file with an `accounts:`
// list, or JSON Lines with one account a line (told apart by the first
// character). Every bad record is reported as "file:line: field: problem".
// JSON Lines are read as a stream: the file is never held whole.
func LoadDirectory(path string) (*Directory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	if isJSONLines(br) {
		return parseJSONLines(path, br)
	}
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	return ParseDirectory(path, data)
}

// ParseDirectory builds a directory from the contents of an accounts file;
// name is used in error messages.
func ParseDirectory(name string, data []byte) (*Directory, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	if isJSONLines(br) {
		return parseJSONLines(name, br)
	}
	blocks, err := decodeYAMLAccounts(name, data)
	if err != nil {
		return nil, err
	}
	return buildDirectory(name, blocks)
}

// isJSONLines reports whether the input starts with '{' (after white space
// and a byte order mark), and skips the byte order mark.
func isJSONLines(br *bufio.Reader) bool {
	if b, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if err != nil || len(b) < n {
			return false
		}
		switch b[n-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
}

func parseJSONLines(name string, r io.Reader) (*Directory, error) {
	blocks, err := decodeJSONLines(name, r)
	if err != nil {
		return nil, err
	}
	return buildDirectory(name, blocks)
}

// block is a run of decoded, canonical accounts, packed, with the line
// each came from. Its lists start at 0; buildDirectory rebases them.
type block struct {
	text     []byte
	accounts []packedAccount
	orders   []packedOrder
	domains  []textRef
	lines    []int32
}

// add packs a canonical account into the block.
func (b *block) add(a *Account, line int) {
	ref := func(s string) textRef {
		r := textRef{uint32(len(b.text)), uint32(len(s))}
		b.text = append(b.text, s...)
		return r
	}
	p := packedAccount{
		id: ref(a.ID), name: ref(a.Name), username: ref(a.Username), admin: ref(a.AdminEmail), partner: ref(a.Partner),
		colour:     uint8(slices.Index(Colours, a.Colour)),
		doNotReset: a.DoNotReset,
		domains:    listRef{uint32(len(b.domains)), uint32(len(a.Domains))},
		orders:     listRef{uint32(len(b.orders)), uint32(len(a.Orders))},
	}
	for _, dom := range a.Domains {
		b.domains = append(b.domains, ref(dom))
	}
	for _, o := range a.Orders {
		b.orders = append(b.orders, packedOrder{number: ref(o.Number), domain: ref(o.Domain), product: uint8(slices.Index(Products, o.Product) + 1)})
	}
	b.accounts = append(b.accounts, p)
	b.lines = append(b.lines, int32(line))
}

// maxReported caps the errors one load reports.
const maxReported = 20

// errorList collects load errors, each with the line it is about.
type errorList struct {
	errs []lineError
}

type lineError struct {
	line int
	msg  string
}

func (e *errorList) add(line int, format string, args ...any) {
	e.errs = append(e.errs, lineError{line, fmt.Sprintf(format, args...)})
}

// joinErrors reports the errors of several lists in line order, at most
// maxReported of them.
func joinErrors(lists ...errorList) error {
	var all []lineError
	for _, l := range lists {
		all = append(all, l.errs...)
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortStableFunc(all, func(a, b lineError) int { return a.line - b.line })
	var b strings.Builder
	for i, e := range all[:min(len(all), maxReported)] {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.msg)
	}
	if len(all) > maxReported {
		fmt.Fprintf(&b, "\n... and %d more", len(all)-maxReported)
	}
	return errors.New(b.String())
}

// chunkSize is how much of a JSON Lines file one worker decodes at a time.
const chunkSize = 4 << 20

// decodeJSONLines decodes one account a line, spreading the work over the
// CPUs (a million accounts must load in a few seconds) while reading the
// input in chunks, so memory holds a few chunks of it, never the whole.
func decodeJSONLines(name string, r io.Reader) ([]block, error) {
	workers := runtime.GOMAXPROCS(0)
	type job struct {
		i int
		c lineChunk
	}
	jobs := make(chan job, workers)
	free := make(chan []byte, 2*workers) // chunk buffers for reuse
	var (
		mu     sync.Mutex
		blocks []block
		errs   []errorList
	)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				var el errorList
				b := decodeChunk(name, j.c, &el)
				select {
				case free <- j.c.data[:0]:
				default:
				}
				mu.Lock()
				for len(blocks) <= j.i {
					blocks = append(blocks, block{})
					errs = append(errs, errorList{})
				}
				blocks[j.i], errs[j.i] = b, el
				mu.Unlock()
			}
		})
	}

	readErr := func() error {
		defer close(jobs)
		var carry []byte // the partial last line of a chunk, for the next
		line := 1
		for i := 0; ; i++ {
			var buf []byte
			select {
			case buf = <-free:
			default:
				buf = make([]byte, 0, chunkSize)
			}
			buf = append(buf[:0], carry...)
			eof := false
			for {
				if len(buf) == cap(buf) { // a line longer than a chunk
					buf = slices.Grow(buf, cap(buf))
				}
				n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					eof = true
					break
				}
				if err != nil {
					return fmt.Errorf("read %s: %w", name, err)
				}
				if bytes.IndexByte(buf[len(carry):], '\n') >= 0 {
					break
				}
			}
			end := len(buf)
			if !eof {
				end = bytes.LastIndexByte(buf, '\n') + 1
			}
			carry = append(carry[:0], buf[end:]...)
			if end > 0 {
				jobs <- job{i, lineChunk{data: buf[:end], first: line}}
				line += bytes.Count(buf[:end], []byte{'\n'})
			}
			if eof {
				return nil
			}
		}
	}()
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	return blocks, joinErrors(errs...)
}

// lineChunk is a run of whole lines and the number of its first line.
type lineChunk struct {
	data  []byte
	first int
}

// decodeChunk decodes the accounts of a chunk, one a line.
func decodeChunk(name string, c lineChunk, errs *errorList) block {
	var b block
	n := bytes.Count(c.data, []byte{'\n'}) + 1
	b.accounts = make([]packedAccount, 0, n)
	b.lines = make([]int32, 0, n)
	b.text = make([]byte, 0, len(c.data)/2)
	var p fastjson.Parser
	line := c.first - 1
	for data := c.data; len(data) > 0; {
		var l []byte
		l, data, _ = bytes.Cut(data, []byte{'\n'})
		line++
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		v, err := p.ParseBytes(l)
		if err != nil {
			errs.add(line, "%s:%d: invalid JSON: %s", name, line, clipError(err))
			continue
		}
		a, field, err := jsonAccount(v)
		if err == nil {
			field, err = canonicalAccount(&a)
		}
		if err != nil {
			if field != "" {
				field += ": "
			}
			errs.add(line, "%s:%d: %s%v", name, line, field, err)
			continue
		}
		b.add(&a, line)
	}
	return b
}

// clipError keeps a parser error short: fastjson quotes the rest of the line.
func clipError(err error) string {
	msg := err.Error()
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return msg
}

func decodeYAMLAccounts(name string, data []byte) ([]block, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlerr.Wrap(name, nil, err)
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
	var b block
	for _, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			errs.add(item.Line, "%s:%d: want an account (a mapping)", name, item.Line)
			continue
		}
		bad := false
		for i := 0; i+1 < len(item.Content); i += 2 {
			if k := item.Content[i]; !slices.Contains(accountFields, k.Value) {
				errs.add(k.Line, "%s:%d: %s: unknown field", name, k.Line, k.Value)
				bad = true
			}
		}
		var a Account
		if err := item.Decode(&a); err != nil {
			errs.add(item.Line, "%v", yamlerr.Wrap(name, item, err))
			continue
		}
		if field, err := canonicalAccount(&a); err != nil {
			errs.add(item.Line, "%s:%d: %s: %v", name, item.Line, field, err)
			continue
		}
		if !bad {
			b.add(&a, item.Line)
		}
	}
	return []block{b}, joinErrors(errs)
}

// buildDirectory joins the blocks and indexes the accounts, one goroutine
// per index. Duplicate ids, order numbers and usernames, and partners that
// do not exist, are errors naming both lines.
func buildDirectory(name string, blocks []block) (*Directory, error) {
	var n, orders, domains int
	for _, b := range blocks {
		n += len(b.accounts)
		orders += len(b.orders)
		domains += len(b.domains)
	}
	d := &Directory{
		arenas:   make([]string, len(blocks)),
		accounts: make([]packedAccount, 0, n),
		orders:   make([]packedOrder, 0, orders),
		domains:  make([]textRef, 0, domains),
	}
	lines := make([]int32, 0, n)
	for k := range blocks {
		b := &blocks[k]
		d.arenas[k] = string(b.text)
		orderBase, domainBase := uint32(len(d.orders)), uint32(len(d.domains))
		for _, p := range b.accounts {
			p.block = uint32(k)
			p.orders.start += orderBase
			p.domains.start += domainBase
			d.accounts = append(d.accounts, p)
		}
		d.orders = append(d.orders, b.orders...)
		d.domains = append(d.domains, b.domains...)
		lines = append(lines, b.lines...)
		*b = block{} // let the block's buffers go
	}
	id := func(i int32) string { p := &d.accounts[i]; return d.text(p, p.id) }

	seed := maphash.MakeSeed()
	var idErrs, orderErrs, userErrs errorList
	var wg sync.WaitGroup
	wg.Go(func() {
		d.byID = newHashIndex(seed, n)
		for i := range d.accounts {
			key := id(int32(i))
			if prev, dup := d.byID.first(key, d.holdsID); dup {
				idErrs.add(int(lines[i]), "%s:%d: id: %q already used on line %d", name, lines[i], key, lines[prev])
				continue
			}
			d.byID.add(key, int32(i), d.holdsID)
		}
		for i := range d.accounts {
			p := &d.accounts[i]
			partner := d.text(p, p.partner)
			if partner == "" {
				continue
			}
			switch q, ok := d.byID.first(partner, d.holdsID); {
			case !ok:
				idErrs.add(int(lines[i]), "%s:%d: partner: no account has id %q", name, lines[i], partner)
			case int(q) == i:
				idErrs.add(int(lines[i]), "%s:%d: partner: an account cannot be its own partner", name, lines[i])
			}
		}
	})
	wg.Go(func() {
		d.byOrder = newHashIndex(seed, orders)
		for i := range d.accounts {
			p := &d.accounts[i]
			for j, o := range d.orders[p.orders.start : p.orders.start+p.orders.n] {
				number := d.text(p, o.number)
				key := address.LowerASCII(number)
				if prev, dup := d.byOrder.first(key, d.holdsOrder); dup && int(prev) != i {
					orderErrs.add(int(lines[i]), "%s:%d: orders[%d].number: %q already belongs to account %q (line %d)",
						name, lines[i], j, number, id(prev), lines[prev])
					continue
				}
				d.byOrder.add(key, int32(i), d.holdsOrder)
			}
		}
	})
	wg.Go(func() {
		d.byUser = newHashIndex(seed, n)
		for i := range d.accounts {
			p := &d.accounts[i]
			username := d.text(p, p.username)
			if username == "" {
				continue
			}
			key := address.LowerASCII(username)
			if prev, dup := d.byUser.first(key, d.holdsUser); dup {
				userErrs.add(int(lines[i]), "%s:%d: username: %q already belongs to account %q (line %d)",
					name, lines[i], username, id(prev), lines[prev])
				continue
			}
			d.byUser.add(key, int32(i), d.holdsUser)
		}
	})
	wg.Go(func() {
		d.byAdmin = newHashIndex(seed, n)
		for i := range d.accounts {
			p := &d.accounts[i]
			d.byAdmin.add(d.text(p, p.admin), int32(i), d.holdsAdmin)
		}
	})
	wg.Go(func() {
		d.byDomain = newHashIndex(seed, domains+orders)
		for i := range d.accounts {
			p := &d.accounts[i]
			for _, r := range d.domains[p.domains.start : p.domains.start+p.domains.n] {
				d.byDomain.add(d.text(p, r), int32(i), d.holdsDomain)
			}
			for _, o := range d.orders[p.orders.start : p.orders.start+p.orders.n] {
				if o.domain.n > 0 {
					d.byDomain.add(d.text(p, o.domain), int32(i), d.holdsDomain)
				}
			}
		}
	})
	wg.Wait()
	if err := joinErrors(idErrs, orderErrs, userErrs); err != nil {
		return nil, err
	}
	return d, nil
}

// canonicalAccount checks an account and puts it in canonical form: emails
// and domains lower case with A-labels, colour and product interned. It
// returns the offending field on error.
func canonicalAccount(a *Account) (string, error) {
	if a.ID = strings.TrimSpace(a.ID); a.ID == "" {
		return "id", errors.New("missing")
	}
	i := slices.Index(Colours, a.Colour)
	if i < 0 {
		if a.Colour == "" {
			return "colour", errors.New("missing")
		}
		return "colour", fmt.Errorf("unknown colour %q (want one of %s)", a.Colour, strings.Join(Colours, ", "))
	}
	a.Colour = Colours[i]
	if a.AdminEmail == "" {
		return "admin_email", errors.New("missing")
	}
	email, err := address.CanonicalEmail(a.AdminEmail)
	if err != nil {
		return "admin_email", err
	}
	a.AdminEmail = email
	if strings.ContainsAny(a.Username, " \t\r\n") {
		return "username", errors.New("must not contain white space")
	}
	for i, dom := range a.Domains {
		c, err := address.Registrable(dom)
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
			c, err := address.Registrable(o.Domain)
			if err != nil {
				return fmt.Sprintf("orders[%d].domain", i), err
			}
			o.Domain = c
		}
		if o.Product != "" {
			p := slices.Index(Products, o.Product)
			if p < 0 {
				return fmt.Sprintf("orders[%d].product", i), fmt.Errorf("unknown product %q (want one of %s)", o.Product, strings.Join(Products, ", "))
			}
			o.Product = Products[p]
		}
	}
	return "", nil
}
