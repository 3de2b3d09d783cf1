package harness

import (
	"runtime/metrics"
	"time"
)

// Peaks are the largest values a Sampler saw.
type Peaks struct {
	Goroutines  uint64 `json:"goroutines"`
	StackBytes  uint64 `json:"stack_bytes"`   // goroutine stacks
	HeapObjects uint64 `json:"heap_objects"`  // bytes of live and not yet swept heap objects
	RuntimeMem  uint64 `json:"runtime_bytes"` // all memory mapped by the Go runtime
}

// Sampler reads a few runtime metrics every interval (runtime/metrics
// reads do not stop the world) and keeps their peaks, to explain a peak
// RSS: a burst of goroutines shows in the stacks, not in a heap profile.
type Sampler struct {
	stop chan struct{}
	done chan Peaks
}

var sampled = []string{
	"/sched/goroutines:goroutines",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/total:bytes",
}

// StartSampler starts sampling every interval until Stop.
func StartSampler(interval time.Duration) *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan Peaks, 1)}
	go func() {
		samples := make([]metrics.Sample, len(sampled))
		for i, name := range sampled {
			samples[i].Name = name
		}
		var p Peaks
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			metrics.Read(samples)
			vals := [4]uint64{}
			for i := range samples {
				if samples[i].Value.Kind() == metrics.KindUint64 {
					vals[i] = samples[i].Value.Uint64()
				}
			}
			p.Goroutines = max(p.Goroutines, vals[0])
			p.StackBytes = max(p.StackBytes, vals[1])
			p.HeapObjects = max(p.HeapObjects, vals[2])
			p.RuntimeMem = max(p.RuntimeMem, vals[3])
			select {
			case <-s.stop:
				s.done <- p
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the peaks.
func (s *Sampler) Stop() Peaks {
	close(s.stop)
	return <-s.done
}
