package pgstore

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// opError is an error of one operation of the store. Its text names the
// operation and never holds the connection's password; errors.Is and
// errors.As see the error it wraps.
type opError struct {
	op      string
	err     error
	secrets []string
}

func (e *opError) Error() string { return scrub(e.op+": "+e.err.Error(), e.secrets) }

func (e *opError) Unwrap() error { return e.err }

// scrub replaces every secret in s with xxxxx.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

// secretsOf returns the passwords a connection string may hold: the user
// information's, and the values of the password parameters of a URL's
// query or of a key=value string. It is best effort; the parsed
// configuration's password is added once known.
func secretsOf(dsn string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
			if u, err := url.QueryUnescape(s); err == nil && u != s {
				out = append(out, u)
			}
		}
	}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		for k, vs := range u.Query() {
			if strings.Contains(strings.ToLower(k), "password") {
				for _, v := range vs {
					add(v)
				}
			}
		}
		return out
	}
	// key=value form: password=secret or password='se cret'.
	for _, key := range []string{"password=", "sslpassword="} {
		rest := dsn
		for {
			i := strings.Index(rest, key)
			if i < 0 {
				break
			}
			rest = rest[i+len(key):]
			if strings.HasPrefix(rest, "'") {
				end := strings.Index(rest[1:], "'")
				if end < 0 {
					add(rest[1:])
					break
				}
				add(rest[1 : end+1])
				continue
			}
			v, _, _ := strings.Cut(rest, " ")
			add(v)
		}
	}
	return out
}

// parseError explains why a connection string did not parse, without the
// string itself (pgx quotes it, redacted only as far as it could parse it).
func parseError(err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return err
	}
	msg := pe.Error()
	if i := strings.LastIndex(msg, "`: "); i >= 0 {
		msg = msg[i+3:]
	}
	return &reasonError{msg: "the connection string does not parse: " + msg, err: pe.Unwrap()}
}

// reasonError is a message with the error it came from (which may be nil).
type reasonError struct {
	msg string
	err error
}

func (e *reasonError) Error() string { return e.msg }
func (e *reasonError) Unwrap() error { return e.err }

// retryable reports whether a commit failed in a way that left nothing
// applied and that trying again may cure: a deadlock or serialization
// failure detected by the server, or a failure before anything was sent.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40P01", "40001": // deadlock_detected, serialization_failure
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
