package actors

import (
	"fmt"
	"runtime/debug"

	"github.com/anthdm/hollywood/actor"
)

// jobPanic carries a panic out of a job goroutine into the task actor, which
// re-raises it in Receive so that Recover reports it like any other crash.
type jobPanic struct {
	value any
	stack []byte
}

// Recover returns a middleware that recovers a panic in the actor's Receive
// (including its Started and Stopped handlers), reports it to the actor's
// parent as Crashed, and from then on drops every message but Stopped, so a
// broken actor does nothing until its supervisor replaces it. hollywood's own
// restart budget is never consumed.
func Recover(name string, gen uint64) actor.MiddlewareFunc {
	crashed := false
	return func(next actor.ReceiveFunc) actor.ReceiveFunc {
		return func(c *actor.Context) {
			_, stopping := c.Message().(actor.Stopped)
			if crashed && !stopping {
				return
			}
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				crashed = true
				stack := debug.Stack()
				if jp, ok := v.(jobPanic); ok {
					v, stack = jp.value, jp.stack
				}
				if stopping {
					return // the parent no longer waits for this incarnation
				}
				if p := c.Parent(); p != nil {
					c.Engine().Send(p, Crashed{Name: name, Gen: gen, Reason: fmt.Sprint(v), Stack: string(stack)})
				}
			}()
			next(c)
		}
	}
}
