package actors

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthdm/hollywood/actor"
)

func TestCountList(t *testing.T) {
	long := `{"x": "` + strings.Repeat("a", 300) + `"}`
	cases := []struct {
		body, key string
		n         int
		errHas    string
	}{
		{`{"ids": [1, 2, 3]}`, "ids", 3, ""},
		{`{"ids": []}`, "ids", 0, ""},
		{`{"ids": [], "other": 1}`, "", 0, ""},
		{`{"ok": true}`, "", 0, ""},
		{`{"ids": null}`, "ids", 0, `"ids" is not a list`},
		{`{"ids": "1,2"}`, "ids", 0, `"ids" is not a list`},
		{`{"ids": {"a": 1}}`, "ids", 0, `"ids" is not a list`},
		{`{"other": []}`, "ids", 0, `no "ids" list`},
		{`[1, 2]`, "ids", 0, "not a JSON object"},
		{`null`, "", 0, "not a JSON object"},
		{`<html>`, "ids", 0, `not a JSON object: "<html>"`},
		{`{"ids": [1, 2`, "ids", 0, "not a JSON object"},
		{``, "ids", 0, "not a JSON object"},
		{long, "ids", 0, `"...`},
	}
	for _, tc := range cases {
		n, err := CountList([]byte(tc.body), tc.key)
		if tc.errHas == "" {
			if err != nil || n != tc.n {
				t.Errorf("CountList(%q, %q) = %d, %v; want %d", tc.body, tc.key, n, err, tc.n)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("CountList(%q, %q) error %v; want one containing %q", tc.body, tc.key, err, tc.errHas)
		}
	}
}

func TestSnippetQuotesAtMost200Bytes(t *testing.T) {
	if got := Snippet([]byte("short")); got != `"short"` {
		t.Errorf("Snippet(short) = %s", got)
	}
	got := Snippet([]byte(strings.Repeat("x", 250)))
	if want := `"` + strings.Repeat("x", 200) + `"...`; got != want {
		t.Errorf("Snippet(250 bytes) = %s", got)
	}
}

// parent records what its children report.
type parent struct {
	mu      sync.Mutex
	crashes []Crashed
	got     []string
}

type child struct{ p *parent }

func (c *child) Receive(ctx *actor.Context) {
	switch m := ctx.Message().(type) {
	case string:
		if m == "boom" {
			panic("kaboom")
		}
		c.p.mu.Lock()
		c.p.got = append(c.p.got, m)
		c.p.mu.Unlock()
	}
}

// Recover turns a panic into a Crashed message to the parent, keeps the
// process alive, and makes the broken actor ignore further messages.
func TestRecoverReportsCrashToParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			t.Fatal(err)
		}
		p := &parent{}
		var kid *actor.PID
		sup := e.SpawnFunc(func(c *actor.Context) {
			switch m := c.Message().(type) {
			case actor.Started:
				kid = c.SpawnChild(func() actor.Receiver { return &child{p: p} }, "kid",
					actor.WithMiddleware(Recover("kid-task", 7)), actor.WithMaxRestarts(0))
			case Crashed:
				p.mu.Lock()
				p.crashes = append(p.crashes, m)
				p.mu.Unlock()
			}
		}, "sup")
		synctest.Wait()
		e.Send(kid, "before")
		e.Send(kid, "boom")
		e.Send(kid, "after")
		time.Sleep(time.Second)
		synctest.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.crashes) != 1 {
			t.Fatalf("%d crash reports, want 1", len(p.crashes))
		}
		c := p.crashes[0]
		if c.Name != "kid-task" || c.Gen != 7 || c.Reason != "kaboom" || !strings.Contains(c.Stack, "actors.(*child).Receive") {
			t.Errorf("crash report %+v", c)
		}
		if len(p.got) != 1 || p.got[0] != "before" {
			t.Errorf("child handled %v; want only the message before the crash", p.got)
		}
		<-e.Poison(sup).Done()
	})
}
