package statuspage

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// This file holds the sessions of the status page. A browser logs in with
// the token and gets a session cookie; an API client sends the token as a
// bearer token on every request.
//
// A session is stateless: the cookie carries a random ID and an expiry,
// signed with a key derived from the token (HMAC-SHA256). Sessions thus
// survive a restart and are shared by replicas with the same token, and
// changing the token ends every session. The CSRF token of a session is
// derived from its ID with the same key, so it needs no storage either;
// forms carry it in a hidden field.

const (
	// sessionCookie names the session cookie.
	sessionCookie = "mojodex_scheduler_session"
	// sessionTTL is how long a login lasts.
	sessionTTL = 12 * time.Hour
	// csrfField names the forms' hidden CSRF field.
	csrfField = "csrf"
)

// authenticator checks tokens, sessions and CSRF tokens.
type authenticator struct {
	// digest is SHA-256 of the token (nil: actions off). Tokens are
	// compared by digest, in constant time, so neither their content nor
	// their length leaks through timing.
	digest []byte
	key    []byte
	now    func() time.Time
	// failures limits wrong tokens, process-wide: past its burst a guess
	// is refused without being checked.
	failures *rate.Limiter
	// origin rejects cross-origin POSTs (Sec-Fetch-Site, then Origin
	// against Host), before any token is looked at.
	origin *http.CrossOriginProtection
}

func newAuthenticator(token string, now func() time.Time, failures *rate.Limiter) *authenticator {
	a := &authenticator{now: now, failures: failures, origin: http.NewCrossOriginProtection()}
	if token != "" {
		d := sha256.Sum256([]byte(token))
		a.digest = d[:]
		mac := hmac.New(sha256.New, []byte(token))
		mac.Write([]byte("mojodex-scheduler status page sessions v1"))
		a.key = mac.Sum(nil)
	}
	return a
}

// enabled reports whether a token is configured.
func (a *authenticator) enabled() bool { return a.digest != nil }

// tokenResult is the outcome of a token check.
type tokenResult int

const (
	tokenWrong tokenResult = iota
	tokenRight
	// tokenThrottled: too many wrong tokens lately; this one was not checked.
	tokenThrottled
)

// checkToken compares given with the token in constant time.
func (a *authenticator) checkToken(given string) tokenResult {
	if !a.enabled() {
		return tokenWrong
	}
	if a.failures.Tokens() < 1 {
		return tokenThrottled
	}
	d := sha256.Sum256([]byte(given))
	if subtle.ConstantTimeCompare(d[:], a.digest) == 1 {
		return tokenRight
	}
	a.failures.Allow()
	return tokenWrong
}

// bearer checks the request's Authorization header: present is false
// without a bearer token.
func (a *authenticator) bearer(r *http.Request) (present bool, res tokenResult) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false, tokenWrong
	}
	return true, a.checkToken(strings.TrimSpace(tok))
}

// session is a logged-in browser.
type session struct {
	id   []byte
	csrf string
}

// mac signs a message of the given purpose.
func (a *authenticator) mac(purpose string, msg []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(nil)
}

func (a *authenticator) csrfOf(id []byte) string {
	return base64.RawURLEncoding.EncodeToString(a.mac("csrf", id))
}

// newSession returns a new session's cookie value.
func (a *authenticator) newSession() (string, error) {
	payload := make([]byte, 16+8)
	if _, err := rand.Read(payload[:16]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint64(payload[16:], uint64(a.now().Add(sessionTTL).Unix()))
	return base64.RawURLEncoding.EncodeToString(payload) + "." +
		base64.RawURLEncoding.EncodeToString(a.mac("session", payload)), nil
}

// session returns the request's session, if its cookie is valid and unexpired.
func (a *authenticator) session(r *http.Request) (session, bool) {
	if !a.enabled() {
		return session{}, false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	p, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return session{}, false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || len(payload) != 24 || !hmac.Equal(mac, a.mac("session", payload)) {
		return session{}, false
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(payload[16:])), 0)
	if !a.now().Before(exp) {
		return session{}, false
	}
	id := payload[:16]
	return session{id: id, csrf: a.csrfOf(id)}, true
}

// checkCSRF compares a form's CSRF field with the session's, in constant time.
func (s session) checkCSRF(given string) bool {
	return given != "" && subtle.ConstantTimeCompare([]byte(given), []byte(s.csrf)) == 1
}

// secure reports whether the browser reached the page over TLS (directly,
// or through a proxy that says so): the cookie is then Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setSessionCookie gives the browser its session.
func setSessionCookie(w http.ResponseWriter, r *http.Request, value string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
}

// clearSessionCookie ends the browser's session.
func clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
}

// localPath returns next if it is a path on this site ("/..."), else "/".
// It keeps a login's redirect from leaving the site.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t\\") {
		return "/"
	}
	return next
}
