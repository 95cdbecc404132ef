package accounts

import (
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fastjson"
)

// jsonAccount decodes one JSON Lines record into an account. It works on a
// parsed fastjson value, which a worker's parser reuses for every line, so
// that the only allocations are the account's own strings: a million
// records load in a few seconds. It returns the offending field on error.
func jsonAccount(v *fastjson.Value) (Account, string, error) {
	var a Account
	obj, err := v.Object()
	if err != nil {
		return a, "", errors.New("want a JSON object")
	}
	var field string
	seen := make(map[string]bool, 8)
	obj.Visit(func(key []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		if seen[string(key)] {
			field, err = string(key), errors.New("given twice")
			return
		}
		seen[string(key)] = true
		switch string(key) {
		case "id":
			a.ID, err = jsonString(v)
		case "colour":
			a.Colour, err = jsonString(v)
		case "name":
			a.Name, err = jsonString(v)
		case "username":
			a.Username, err = jsonString(v)
		case "admin_email":
			a.AdminEmail, err = jsonString(v)
		case "partner":
			a.Partner, err = jsonString(v)
		case "do_not_reset":
			if v.Type() != fastjson.TypeNull {
				a.DoNotReset, err = v.Bool()
				if err != nil {
					err = errors.New("want true or false")
				}
			}
		case "domains":
			var at string
			a.Domains, at, err = jsonStrings(v)
			if err != nil {
				field = "domains" + at
				return
			}
		case "orders":
			a.Orders, field, err = jsonOrders(v)
			if err != nil {
				field = "orders" + field
				return
			}
		default:
			err = errors.New("unknown field")
		}
		if err != nil {
			field = string(key)
		}
	})
	return a, field, err
}

func jsonString(v *fastjson.Value) (string, error) {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b), nil
	case fastjson.TypeNull:
		return "", nil
	}
	return "", fmt.Errorf("want a string, got %s", v.Type())
}

// jsonStrings decodes a list of strings; on error it returns the index of
// the bad item ("[1]").
func jsonStrings(v *fastjson.Value) ([]string, string, error) {
	if v.Type() == fastjson.TypeNull {
		return nil, "", nil
	}
	items, err := v.Array()
	if err != nil {
		return nil, "", fmt.Errorf("want a list of strings, got %s", v.Type())
	}
	out := make([]string, len(items))
	for i, item := range items {
		if out[i], err = jsonString(item); err != nil {
			return nil, fmt.Sprintf("[%d]", i), err
		}
	}
	return out, "", nil
}

// jsonOrders decodes the orders list; the field it returns on error is the
// path below "orders", e.g. "[1].product".
func jsonOrders(v *fastjson.Value) ([]Order, string, error) {
	if v.Type() == fastjson.TypeNull {
		return nil, "", nil
	}
	items, err := v.Array()
	if err != nil {
		return nil, "", fmt.Errorf("want a list of orders, got %s", v.Type())
	}
	out := make([]Order, len(items))
	for i, item := range items {
		obj, err := item.Object()
		if err != nil {
			return nil, fmt.Sprintf("[%d]", i), fmt.Errorf("want an order object, got %s", item.Type())
		}
		o := &out[i]
		var key string
		obj.Visit(func(k []byte, v *fastjson.Value) {
			if err != nil {
				return
			}
			switch string(k) {
			case "number":
				// Order numbers are strings; a bare integer is taken as written.
				if v.Type() == fastjson.TypeNumber && !strings.ContainsAny(string(v.MarshalTo(nil)), ".eE-+") {
					o.Number = string(v.MarshalTo(nil))
				} else {
					o.Number, err = jsonString(v)
				}
			case "domain":
				o.Domain, err = jsonString(v)
			case "product":
				o.Product, err = jsonString(v)
			default:
				err = errors.New("unknown field")
			}
			if err != nil {
				key = string(k)
			}
		})
		if err != nil {
			return nil, fmt.Sprintf("[%d].%s", i, key), err
		}
	}
	return out, "", nil
}
