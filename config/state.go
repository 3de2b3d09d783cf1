package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// StateKind is where the scheduler keeps its state.
type StateKind string

// The kinds of MOJODEX_SCHEDULER_STATE.
const (
	// StateFile is one bbolt file on local disk.
	StateFile StateKind = "file"
	// StateMemory keeps state in memory only ("off"): a restart forgets it.
	StateMemory StateKind = "memory"
	// StatePostgres is a PostgreSQL database shared by replicas.
	StatePostgres StateKind = "postgres"
)

// StateLocation is MOJODEX_SCHEDULER_STATE, parsed. Print it with Redacted
// (or %v, which calls it): DSN may hold a password.
type StateLocation struct {
	// Kind says which of Path and DSN is set.
	Kind StateKind
	// Path is the state file, for StateFile.
	Path string
	// DSN is the postgres:// or postgresql:// URL, password included, for
	// StatePostgres. Never print it; print Redacted.
	DSN string
}

// StateLocation parses c.State. It fails only for a Config that Load did
// not make (Load refuses a value it cannot parse); the error holds no
// password.
func (c Config) StateLocation() (StateLocation, error) {
	loc, err := parseState(strings.TrimSpace(c.State))
	if err != nil {
		return StateLocation{}, fmt.Errorf("MOJODEX_SCHEDULER_STATE: %w", err)
	}
	return loc, nil
}

// Redacted is the location for logs and messages: "off", the file path, or
// the DSN with its password (in the user info or a password query
// parameter) replaced by "xxxxx".
func (l StateLocation) Redacted() string {
	switch l.Kind {
	case StateMemory:
		return off
	case StatePostgres:
		return redactURL(l.DSN)
	}
	return l.Path
}

// String is Redacted, so that formatting a StateLocation never prints a
// password.
func (l StateLocation) String() string { return l.Redacted() }

// GoString is Redacted too, for %#v.
func (l StateLocation) GoString() string {
	return fmt.Sprintf("config.StateLocation{Kind: %q, %s}", l.Kind, l.Redacted())
}

// parseState parses a trimmed, non-empty MOJODEX_SCHEDULER_STATE value.
// Its errors never hold a password.
func parseState(v string) (StateLocation, error) {
	if strings.EqualFold(v, off) {
		return StateLocation{Kind: StateMemory}, nil
	}
	scheme, _, isURL := strings.Cut(v, "://")
	if !isURL {
		if v == "" {
			return StateLocation{}, errors.New("is empty")
		}
		if looksLikeKeywords(v) {
			return StateLocation{}, errors.New("looks like a key=value connection string (host=… dbname=…): write it as a URL, postgres://user:password@host/db")
		}
		if looksLikeMistypedURL(v) {
			// A file path would be created, and the password printed.
			at := strings.LastIndex(v, "@")
			return StateLocation{}, fmt.Errorf("xxxxx%s looks like a PostgreSQL URL without its \"://\": write postgres://user:password@host/db", v[at:])
		}
		return StateLocation{Kind: StateFile, Path: v}, nil
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
	default:
		return StateLocation{}, fmt.Errorf("%s is not a file path, off, or a postgres:// or postgresql:// URL", redactURL(v))
	}
	u, err := url.Parse(v)
	if err != nil {
		return StateLocation{}, fmt.Errorf("%s is not a URL: %w", redactURL(v), urlReason(v, err))
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p, 1); err != nil {
			return StateLocation{}, fmt.Errorf("%s: %w", redactURL(v), err)
		}
	}
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		return StateLocation{}, fmt.Errorf("%s: the query does not parse (a %% must start a %%XX escape; & separates parameters)", redactURL(v))
	}
	return StateLocation{Kind: StatePostgres, DSN: v}, nil
}

// looksLikeMistypedURL reports whether a value without "://" is a
// PostgreSQL URL with a typo in its scheme's separator (postgres//…,
// postgres:/…, postgresql:…) rather than a file path: it starts with the
// scheme and holds user info.
func looksLikeMistypedURL(v string) bool {
	lower := strings.ToLower(v)
	if !strings.HasPrefix(lower, "postgres") || !strings.Contains(v, "@") {
		return false
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(lower, "postgres"), "ql")
	return strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, "/")
}

// looksLikeKeywords reports whether v is a libpq key=value connection
// string rather than a file path: several space-separated words, one of
// them host=, dbname=, user= or password=.
func looksLikeKeywords(v string) bool {
	words := strings.Fields(v)
	if len(words) < 2 {
		return false
	}
	for _, w := range words {
		k, _, ok := strings.Cut(w, "=")
		switch strings.ToLower(k) {
		case "host", "hostaddr", "dbname", "user", "password":
			if ok {
				return true
			}
		}
	}
	return false
}

// redactURL returns s with the password of its user info and the values of
// its password query parameters (password, sslpassword) replaced by
// "xxxxx". A value that does not parse as a URL keeps only its scheme and
// what follows the last "@".
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		scheme, rest, ok := strings.Cut(s, "://")
		if !ok {
			return "(a value that is not a URL)"
		}
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			rest = "xxxxx@" + rest[i+1:]
		}
		if i := strings.IndexAny(rest, "?#"); i >= 0 {
			rest = rest[:i] + "?xxxxx"
		}
		return scheme + "://" + rest
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "xxxxx" // a query that does not parse may still hold a password
			return u.Redacted()
		}
		changed := false
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q[k] = []string{"xxxxx"}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// urlReason is the reason of url.Parse's error for s, without the URL
// (which may hold a password). When s has user info, the reason is not
// given either: it may quote an escape from the password.
func urlReason(s string, err error) error {
	if strings.Contains(s, "@") {
		return errors.New("check its user info and its % escapes")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// checkPort checks a port number: decimal digits, from min to 65535.
func checkPort(p string, min int) error {
	if !digits.MatchString(p) {
		return fmt.Errorf("port %q is not a number", p)
	}
	if n, err := strconv.Atoi(p); err != nil || n < min || n > 65535 {
		return fmt.Errorf("port %s is out of range (%d to 65535)", p, min)
	}
	return nil
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// checkAddr checks a host:port listening address (the host may be empty:
// every interface; port 0 picks a free port).
func checkAddr(v, example string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		reason := err.Error()
		var ae *net.AddrError
		if errors.As(err, &ae) {
			reason = ae.Err
		}
		return fmt.Errorf("%q is not host:port (e.g. %s), nor %s: %s", v, example, off, reason)
	}
	if err := checkPort(port, 0); err != nil {
		return fmt.Errorf("%q: %w", v, err)
	}
	return nil
}

// checkURI checks a service base URI. Its errors show the URI without a
// password.
func checkURI(s, example string) error {
	if s == "" {
		return fmt.Errorf("is required (e.g. %s)", example)
	}
	if !strings.Contains(s, "://") {
		return fmt.Errorf("%q must be an absolute http:// or https:// URL (e.g. %s)", s, example)
	}
	shown := redactURL(s)
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", shown, urlReason(s, err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q must be an absolute http:// or https:// URL with a host (e.g. %s)", shown, example)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p, 1); err != nil {
			return fmt.Errorf("%q: %w", shown, err)
		}
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("%q must not contain a fragment (#)", shown)
	}
	return nil
}
