package endpoint

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/anthdm/hollywood/remote"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/internal/testnet"
)

// stockNode starts an engine with hollywood's own remote (remote.New) on a
// free loopback port.
func stockNode(t *testing.T, cfg *tls.Config) *actor.Engine {
	t.Helper()
	addr := testnet.FreeAddr(t)
	conf := remote.NewConfig()
	if cfg != nil {
		conf = conf.WithTLS(cfg)
	}
	r := remote.New(addr, conf)
	e, err := actor.NewEngine(actor.NewEngineConfig().WithRemote(r))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop().Wait() })
	return e
}

// A host on stock hollywood and one on this endpoint talk to each other
// both ways, over plain TCP and over mutual TLS.
func TestCompatibleWithStockRemote(t *testing.T) {
	serverTLS, clientTLS, _ := mutualTLS(t)
	for _, tc := range []struct {
		name         string
		ours, theirs *tls.Config
	}{
		{"plain", nil, nil},
		{"mutual TLS", serverTLS, clientTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("stock asks, endpoint answers", func(t *testing.T) {
				server := newNode(t, WithTLS(tc.ours))
				spawnAnswerer(server.engine)
				stock := stockNode(t, tc.theirs)
				v, err := stock.Request(actor.NewPID(server.ep.Address(), supervisorID),
					&controlv1.GetTaskRequest{Name: "extract-todos"}, 3*time.Second).Result()
				if err != nil {
					t.Fatalf("no reply: %v\nendpoint logs:\n%s", err, server.logs)
				}
				if r, ok := v.(*controlv1.GetTaskResponse); !ok || r.GetTask().GetName() != "extract-todos" {
					t.Errorf("reply %T %v", v, v)
				}
				if !waitUntil(time.Second, func() bool { st := server.ep.Stats(); return st.Violations == 0 && st.Sent == 1 }) {
					t.Errorf("stats %+v", server.ep.Stats())
				}
			})
			t.Run("endpoint asks, stock answers", func(t *testing.T) {
				stock := stockNode(t, tc.theirs)
				spawnAnswerer(stock)
				client := clientNode(t, WithTLS(tc.ours))
				if _, err := listTasks(t, client.engine, stock.Address(), 3*time.Second); err != nil {
					t.Fatalf("no reply: %v\nendpoint logs:\n%s", err, client.logs)
				}
				if !waitUntil(time.Second, func() bool { st := client.ep.Stats(); return st.Violations == 0 && st.Delivered == 1 }) {
					t.Errorf("stats %+v", client.ep.Stats())
				}
			})
		})
	}
}
