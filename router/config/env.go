package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
)

// EnvPrefix begins the name of every environment variable that overrides
// a setting.
const EnvPrefix = "TICKETROUTER_"

// EnvName returns the environment variable that overrides the setting at
// path: EnvPrefix, then the path upper-cased with '_' in place of each
// '.' between levels. A key's own '_' stays: imap.addr is
// TICKETROUTER_IMAP_ADDR, nats.nkey_seed TICKETROUTER_NATS_NKEY_SEED,
// nats.embedded.store_dir TICKETROUTER_NATS_EMBEDDED_STORE_DIR. No two
// settings share a name (a test holds the keys to that), so a name means
// one setting.
//
// A variable set to the empty string counts as unset. A list is written
// comma-separated (TICKETROUTER_IMAP_MAILBOXES=INBOX,Support), a duration
// as in the file (30s), true or false as true, false, 1 or 0. A secret's
// variable (imap.secret, smtp.secret, nats.password, nats.nkey_seed)
// holds the secret itself: setting it is {env: ITS NAME} in the file.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv overrides the file's settings with the environment's, recording
// which came from there; a value that does not parse is a problem named
// after its variable.
func (c *Config) applyEnv(lookup func(string) (string, bool)) {
	root := reflect.ValueOf(c).Elem()
	for _, s := range settings() {
		name := EnvName(s.path)
		val, ok := lookup(name)
		if !ok || val == "" {
			continue
		}
		if err := setFromEnv(root.FieldByIndex(s.index), name, val); err != nil {
			c.src.add(&FieldError{File: c.src.file, Env: name, Field: s.path, Msg: err.Error()})
			continue
		}
		c.src.env[s.path] = name
	}
}

// EnvNames returns the environment variable of every setting, keyed by
// the setting's path: what documentation can be checked against.
func EnvNames() map[string]string {
	out := map[string]string{}
	for _, s := range settings() {
		out[s.path] = EnvName(s.path)
	}
	return out
}

// setFromEnv sets v from the value of the environment variable name.
func setFromEnv(v reflect.Value, name, val string) error {
	t := v.Type()
	switch {
	case t == reflect.TypeFor[*ingest.Secret]():
		v.Set(reflect.ValueOf(&ingest.Secret{Env: name})) // read when used, never copied
	case t == durationType:
		d, err := time.ParseDuration(val)
		if err != nil {
			return fmt.Errorf("want %s, got %q", want(t), val)
		}
		v.SetInt(int64(d))
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := setFromEnv(p.Elem(), name, val); err != nil {
			return err
		}
		v.Set(p)
	case t.Kind() == reflect.String:
		v.SetString(val)
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("want %s, got %q", want(t), val)
		}
		v.SetBool(b)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(val, 10, t.Bits())
		if err != nil {
			return fmt.Errorf("want %s, got %q", want(t), val)
		}
		v.SetInt(n)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		var list []string
		for item := range strings.SplitSeq(val, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list).Convert(t))
	default:
		return errors.New("cannot be set from the environment") // a test keeps this from happening
	}
	return nil
}
