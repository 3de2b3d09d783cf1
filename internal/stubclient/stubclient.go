// Package stubclient gives tests an API client of the stub of the Mojodex
// services (mojodexstub) served in memory, without a socket: whole runs
// (timers, actors, HTTP calls, retries) then execute inside a synctest
// bubble, on virtual time.
package stubclient

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// The base URLs that Transport serves: the stub's backend and background
// services.
const (
	BackendURL    = "http://backend.test"
	BackgroundURL = "http://background.test"
)

// transport serves HTTP calls from the stub's handlers.
type transport struct{ backend, background http.Handler }

// Transport returns a RoundTripper that serves requests to BackendURL and
// BackgroundURL with stub's handlers, in memory; a request to any other
// host is refused like a closed port, and a handler that hangs up (the
// stub's SetDown or Fault.Hangup) is, to the client, a connection reset
// before any response.
func Transport(stub *mojodexstub.Stub) http.RoundTripper {
	return transport{backend: stub.Backend(), background: stub.Background()}
}

func (h transport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			resp, err = nil, fmt.Errorf("read tcp 127.0.0.1:1->%s: %w", req.URL.Host, syscall.ECONNRESET)
		}
	}()
	var target http.Handler
	switch "http://" + req.URL.Host {
	case BackendURL:
		target = h.backend
	case BackgroundURL:
		target = h.background
	default:
		return nil, fmt.Errorf("dial %s: connection refused", req.URL.Host)
	}
	if req.Body == nil {
		req.Body = http.NoBody // a server-side request always has a body
	}
	rec := httptest.NewRecorder()
	target.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	resp = rec.Result()
	resp.Request = req
	return resp, nil
}

// New returns an API client of stub over Transport, sending secret, with
// no rate limit; mutate, when not nil, may change the configuration first.
func New(t testing.TB, stub *mojodexstub.Stub, secret string, mutate func(*apiclient.Config)) *apiclient.Client {
	t.Helper()
	cfg := apiclient.Config{
		BackendURL:    BackendURL,
		BackgroundURL: BackgroundURL,
		Secret:        secret,
		Rate:          -1,
		HTTPClient:    &http.Client{Transport: Transport(stub)},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := apiclient.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}
