// Package accounts is the account directory: the customer records of the
// order system (POLICY.md, "Account"), loaded from YAML or JSON Lines with
// every problem named by file and line, kept packed in memory, and looked
// up by id, order number, username, admin address and domain.
package accounts

import (
	"strings"

	"github.com/ticketrouter/ticketrouter/rules/address"
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
// Colours are the order channels an account can come through: blue web
// host, red reseller, pink EPKI, dark-green affiliate, green direct.
var Colours = []string{"blue", "red", "pink", "dark-green", "green"}

var Products = []string{"ssl", "code-signing", "smime", "client"}

// accountFields are the keys an account record may have.
var accountFields = []string{"id", "colour", "name", "username", "admin_email", "domains", "orders", "partner", "do_not_reset"}

// Directory is the account directory, indexed for the lookups the policy
// needs: by id, order number, admin email, username and domain. It is
// immutable once loaded and safe for concurrent use.
//
// Accounts are stored packed: fixed-size records of offsets into one text
// arena (a string) per loaded block, with no pointers in them, so that a
// directory of millions of accounts costs the garbage collector nothing to
// scan and holds each string in exactly its own bytes. Lookups return
// Account values built on demand, whose strings share the arena.
type Directory struct {
	arenas   []string
	accounts []packedAccount
	orders   []packedOrder
	domains  []textRef // the accounts' own domains
	byID     hashIndex
	byOrder  hashIndex // lower-cased order number
	byUser   hashIndex // lower-cased username
	byAdmin  hashIndex // canonical admin email
	byDomain hashIndex // A-label domain, from domains and orders
}

// textRef is a string in an arena.
type textRef struct{ off, n uint32 }

// listRef is a run of orders or domains.
type listRef struct{ start, n uint32 }

type packedAccount struct {
	id, name, username, admin, partner textRef
	orders, domains                    listRef
	block                              uint32 // the arena of every string of the account
	colour                             uint8  // index into Colours
	doNotReset                         bool
}

type packedOrder struct {
	number, domain textRef
	product        uint8 // 1 + index into Products; 0: none
}

// Len returns the number of accounts.
func (d *Directory) Len() int { return len(d.accounts) }

// Account returns the account with the given id.
func (d *Directory) Account(id string) (*Account, bool) {
	return d.one(d.byID.first(id, d.holdsID))
}

// ByOrder returns the account holding the order number (ASCII letters
// compared case-insensitively).
func (d *Directory) ByOrder(number string) (*Account, bool) {
	return d.one(d.byOrder.first(address.LowerASCII(number), d.holdsOrder))
}

// ByUsername returns the account with the username (ASCII letters compared
// case-insensitively, every other character as it is: a KELVIN SIGN is
// no "k").
func (d *Directory) ByUsername(name string) (*Account, bool) {
	return d.one(d.byUser.first(address.LowerASCII(name), d.holdsUser))
}

// ByAdminEmail returns the accounts whose admin email is addr, compared
// case-insensitively with the domain as an A-label.
func (d *Directory) ByAdminEmail(addr string) []*Account {
	canon, err := address.CanonicalEmail(addr)
	if err != nil {
		return nil
	}
	var buf [4]int32
	return d.list(d.byAdmin.lookup(canon, d.holdsAdmin, buf[:0]))
}

// ByDomain returns the accounts that hold domain, or the closest parent of
// it that any account holds ("shop.acmecorp.com" finds "acmecorp.com"),
// together with the domain that matched. Look-alikes such as
// "acmecorp.com.evil.example" never match: only parents are tried.
func (d *Directory) ByDomain(domain string) ([]*Account, string) {
	canon, err := address.MappedDomain(domain)
	if err != nil {
		return nil, ""
	}
	var buf [4]int32
	for name := canon; ; {
		if ids := d.byDomain.lookup(name, d.holdsDomain, buf[:0]); len(ids) > 0 {
			return d.list(ids), name
		}
		dot := strings.IndexByte(name, '.')
		if dot < 0 {
			return nil, ""
		}
		name = name[dot+1:]
	}
}

func (d *Directory) one(id int32, ok bool) (*Account, bool) {
	if !ok {
		return nil, false
	}
	return d.account(id), true
}

func (d *Directory) list(ids []int32) []*Account {
	out := make([]*Account, len(ids))
	for i, id := range ids {
		out[i] = d.account(id)
	}
	return out
}

// text returns a string of the account's arena.
func (d *Directory) text(p *packedAccount, r textRef) string {
	return d.arenas[p.block][r.off : r.off+r.n]
}

// account builds the Account value of record i.
func (d *Directory) account(i int32) *Account {
	p := &d.accounts[i]
	a := &Account{
		ID:         d.text(p, p.id),
		Colour:     Colours[p.colour],
		Name:       d.text(p, p.name),
		Username:   d.text(p, p.username),
		AdminEmail: d.text(p, p.admin),
		Partner:    d.text(p, p.partner),
		DoNotReset: p.doNotReset,
	}
	if p.domains.n > 0 {
		a.Domains = make([]string, p.domains.n)
		for k, r := range d.domains[p.domains.start : p.domains.start+p.domains.n] {
			a.Domains[k] = d.text(p, r)
		}
	}
	if p.orders.n > 0 {
		a.Orders = make([]Order, p.orders.n)
		for k, o := range d.orders[p.orders.start : p.orders.start+p.orders.n] {
			a.Orders[k] = Order{Number: d.text(p, o.number), Domain: d.text(p, o.domain)}
			if o.product > 0 {
				a.Orders[k].Product = Products[o.product-1]
			}
		}
	}
	return a
}

// The holds functions confirm an index hit against the account.

func (d *Directory) holdsID(id int32, key string) bool {
	p := &d.accounts[id]
	return d.text(p, p.id) == key
}

func (d *Directory) holdsUser(id int32, key string) bool {
	p := &d.accounts[id]
	return address.EqualFoldASCII(d.text(p, p.username), key)
}

func (d *Directory) holdsAdmin(id int32, key string) bool {
	p := &d.accounts[id]
	return d.text(p, p.admin) == key
}

func (d *Directory) holdsOrder(id int32, key string) bool {
	p := &d.accounts[id]
	for _, o := range d.orders[p.orders.start : p.orders.start+p.orders.n] {
		if address.EqualFoldASCII(d.text(p, o.number), key) {
			return true
		}
	}
	return false
}

func (d *Directory) holdsDomain(id int32, key string) bool {
	p := &d.accounts[id]
	for _, r := range d.domains[p.domains.start : p.domains.start+p.domains.n] {
		if d.text(p, r) == key {
			return true
		}
	}
	for _, o := range d.orders[p.orders.start : p.orders.start+p.orders.n] {
		if d.text(p, o.domain) == key {
			return true
		}
	}
	return false
}
