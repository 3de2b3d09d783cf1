// Package floor measures what hollywood v1.0.5 itself costs per message to
// an idle actor: the floor under the scheduler's CPU per fire, since every
// fire is one message to a task actor that is idle between fires.
package floor

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/bench/harness"
)

type sink struct{ n *atomic.Int64 }

func (s sink) Receive(c *actor.Context) {
	if _, ok := c.Message().(int); ok {
		s.n.Add(1)
	}
}

// stacky uses about 2 KiB of stack per message, as a handler that logs,
// allocates and sends does: the fresh goroutine hollywood starts for an
// idle inbox must grow its stack.
type stacky struct{ n *atomic.Int64 }

//go:noinline
func deep(buf [1536]byte, i int) int64 { return int64(buf[i%len(buf)]) + 1 }

func (s stacky) Receive(c *actor.Context) {
	if v, ok := c.Message().(int); ok {
		var buf [1536]byte
		s.n.Add(deep(buf, v))
	}
}

func benchIdle(b *testing.B, producer func(*atomic.Int64) actor.Producer) {
	e, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		b.Fatal(err)
	}
	const actors = 10000
	var n atomic.Int64
	pids := make([]*actor.PID, actors)
	for i := range pids {
		pids[i] = e.Spawn(producer(&n), "a", actor.WithID(strconv.Itoa(i)))
	}
	before := harness.Self().CPU
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Send(pids[i%actors], i)
	}
	for n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(harness.Self().CPU-before)/float64(b.N), "cpu-ns/msg")
}

// BenchmarkIdleActorMessage is one message to one of 10,000 idle actors.
func BenchmarkIdleActorMessage(b *testing.B) {
	benchIdle(b, func(n *atomic.Int64) actor.Producer { return func() actor.Receiver { return sink{n} } })
}

// BenchmarkIdleActorMessageStack is the same with a handler that needs
// about 2 KiB of stack.
func BenchmarkIdleActorMessageStack(b *testing.B) {
	benchIdle(b, func(n *atomic.Int64) actor.Producer { return func() actor.Receiver { return stacky{n} } })
}
