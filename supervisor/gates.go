package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mojodex/mojodex-scheduler/apiclient"
	"github.com/mojodex/mojodex-scheduler/internal/msg"
	"github.com/mojodex/mojodex-scheduler/task"
)

// gate is the supervisor's knowledge of one backend probe: it probes, and
// tells the task actors gated by it what the probe said.
type gate struct {
	state   msg.Gate
	probing bool
}

// gateResult carries a probe's answer back from its goroutine.
type gateResult struct {
	gate task.Gate
	open bool
	err  error
}

// gateTick repeats the probes.
type gateTick struct{}

// probeTimeout bounds one probe, retries included.
const probeTimeout = time.Minute

func (s *supervisor) addGate(g task.Gate) bool {
	if g == task.GateNone || s.gates[g] != nil {
		return false
	}
	s.gates[g] = &gate{state: msg.Gate{Gate: g}}
	return true
}

func (s *supervisor) gateState(g task.Gate) msg.Gate {
	if ge := s.gates[g]; ge != nil {
		return ge.state
	}
	return msg.Gate{Gate: g}
}

// probeGates asks the backend, on a goroutine per gate, whether each
// gate's service is configured (GET its probe path with the secret).
func (s *supervisor) probeGates() {
	if s.client == nil || s.draining {
		return
	}
	for g, ge := range s.gates {
		if ge.probing {
			continue
		}
		ge.probing = true
		client, engine, self := s.client, s.engine, s.self
		go func() {
			open, err := probe(client, g)
			engine.Send(self, gateResult{gate: g, open: open, err: err})
		}()
	}
}

func (s *supervisor) armGateTick() {
	if s.opts.manual || s.draining || len(s.gates) == 0 {
		return
	}
	if s.gateT != nil {
		s.gateT.Stop()
	}
	engine, self := s.engine, s.self
	s.gateT = time.AfterFunc(s.opts.gateInterval, func() { engine.Send(self, gateTick{}) })
}

// probe performs one gate probe. A failed probe means "not configured".
func probe(client *apiclient.Client, g task.Gate) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	resp, err := client.Do(ctx, apiclient.Request{
		Task: "gate-" + string(g), Service: task.ServiceBackend, Method: "GET", Path: g.ProbePath(), Auth: true,
	})
	if err != nil {
		return false, err
	}
	var v struct {
		IsConfigured *bool `json:"is_configured"`
	}
	if err := json.Unmarshal(resp.Body, &v); err != nil || v.IsConfigured == nil {
		return false, fmt.Errorf("probe reply has no is_configured boolean: %s", client.Snippet(resp.Body))
	}
	return *v.IsConfigured, nil
}

func (s *supervisor) onGateResult(r gateResult) {
	ge := s.gates[r.gate]
	if ge == nil {
		return
	}
	ge.probing = false
	if r.err != nil {
		s.log.Warn().Err(r.err).Str("gate", string(r.gate)).Msg("gate probe failed; treating the service as not configured")
	}
	prev := ge.state
	ge.state = msg.Gate{Gate: r.gate, Known: true, Open: r.open}
	if prev != ge.state {
		s.log.Info().Str("gate", string(r.gate)).Bool("configured", r.open).Msg("gate changed")
	}
	for _, e := range s.tasks {
		if e.spec.EnabledIf == r.gate && e.life == alive {
			s.engine.Send(e.pid, ge.state)
		}
	}
}
