package broker

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// redacted stands in for a credential in messages.
const redacted = "xxxxx"

// RedactURL returns urls (one or several, comma-separated) fit for logs
// and errors: a password becomes xxxxx, and a user given without a
// password, which NATS takes as a token, becomes xxxxx whole. It does not
// need the URL to parse: a malformed one is redacted too.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		userinfo, at, ok := userinfoOf(p)
		if !ok {
			continue
		}
		if user, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
			parts[i] = p[:at] + user + ":" + redacted + p[at+len(userinfo):]
		} else {
			parts[i] = p[:at] + redacted + p[at+len(userinfo):]
		}
	}
	return strings.Join(parts, ",")
}

// userinfoOf returns the user information of one URL (before the last @
// of what follows the scheme) and where it starts.
func userinfoOf(u string) (userinfo string, at int, ok bool) {
	if i := strings.Index(u, "://"); i >= 0 {
		at = i + len("://")
	}
	end := strings.LastIndex(u[at:], "@")
	if end < 0 {
		return "", 0, false
	}
	return u[at : at+end], at, true
}

// urlSecrets returns the passwords and tokens in urls, as written and
// decoded.
func urlSecrets(urls string) []string {
	var out []string
	for p := range strings.SplitSeq(urls, ",") {
		userinfo, _, ok := userinfoOf(p)
		if !ok {
			continue
		}
		secret := userinfo
		if _, pw, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
			secret = pw
		}
		if secret == "" {
			continue
		}
		out = append(out, secret)
		if dec, err := url.PathUnescape(secret); err == nil && dec != secret {
			out = append(out, dec)
		}
	}
	return out
}

// redactedError is an error whose text had credentials taken out; errors.Is
// and errors.As still see the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactError returns err with every password or token of urls taken out
// of its text (Go's URL parser, for one, quotes the URL it could not
// parse, credentials and all).
func redactError(err error, urls string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range urlSecrets(urls) {
		quoted := strconv.Quote(s)
		for _, form := range []string{s, quoted[1 : len(quoted)-1]} {
			msg = strings.ReplaceAll(msg, form, redacted)
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// Where says where tickets go, for people: the servers' URLs (a password
// or token in them redacted), or the embedded server's address.
func Where(cfg NATSConfig) string {
	if cfg.URL != "" {
		return RedactURL(cfg.URL)
	}
	e := cfg.WithDefaults().Embedded
	return fmt.Sprintf("embedded on %s:%d", e.Host, e.Port)
}
