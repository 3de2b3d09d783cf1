package stubclient

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

const secret = "stubclient-test-secret"

func post(t *testing.T, c *http.Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"datetime": "2026-11-25T10:30:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", secret)
	req.Header.Set("Content-Type", "application/json")
	return c.Do(req)
}

// Each service is served by its own handler; another host is refused and
// a hang-up is a connection reset.
func TestTransport(t *testing.T) {
	stub := mojodexstub.New(mojodexstub.Options{Secret: secret, Backlog: mojodexstub.DefaultBacklog()})
	c := &http.Client{Transport: Transport(stub)}

	resp, err := post(t, c, BackgroundURL+"/extract_todos")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(stub.CallsTo("/extract_todos")) != 1 {
		t.Errorf("background /extract_todos: %d %s, %d calls seen by the stub", resp.StatusCode, body, len(stub.CallsTo("/extract_todos")))
	}
	if resp, err := post(t, c, BackendURL+"/extract_todos"); err != nil || resp.StatusCode == http.StatusOK {
		t.Errorf("backend /extract_todos (a background path): %v %v, want an error status", resp, err)
	} else {
		resp.Body.Close()
	}

	if _, err := post(t, c, "http://elsewhere.test/extract_todos"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("another host: %v, want connection refused", err)
	}

	stub.Inject("/extract_todos", mojodexstub.Fault{Hangup: true})
	if _, err := post(t, c, BackgroundURL+"/extract_todos"); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("a hang-up: %v, want a connection reset", err)
	}
}
