package apiclient

// Timing behaviour, run in testing/synctest bubbles with an in-memory
// transport: time is virtual, so the assertions are exact.

import (
	"context"
	"errors"
	"github.com/mojodex/mojodex-scheduler/task"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestRateLimitHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			n     = 25
			r     = 10.0
			burst = 5
		)
		var (
			mu    sync.Mutex
			times []time.Duration
		)
		start := time.Now()
		rt := rtFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			times = append(times, time.Since(start))
			mu.Unlock()
			return fakeResponse(req, 200, `{}`), nil
		})
		obs := &recObserver{}
		c := fakeClient(t, rt, func(cfg *Config) {
			cfg.Rate = r
			cfg.Burst = burst
			cfg.Observer = obs
		})
		var (
			wg      sync.WaitGroup
			maxWait atomic.Int64
		)
		for range n {
			wg.Go(func() {
				resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
				if err != nil {
					t.Errorf("Do: %v", err)
				}
				for {
					m := maxWait.Load()
					if int64(resp.RateWait) <= m || maxWait.CompareAndSwap(m, int64(resp.RateWait)) {
						break
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		want := time.Duration(float64(n-burst) / r * float64(time.Second))
		if elapsed < want || elapsed > want+50*time.Millisecond {
			t.Fatalf("%d calls at %v/s burst %d took %v, want %v", n, r, burst, elapsed, want)
		}
		slices.Sort(times)
		for k, at := range times {
			if k < burst {
				continue
			}
			if min := time.Duration(float64(k-burst+1) / r * float64(time.Second)); at < min-time.Millisecond {
				t.Fatalf("call %d started at %v, before %v", k, at, min)
			}
		}
		if time.Duration(maxWait.Load()) != want {
			t.Fatalf("max RateWait = %v, want %v", time.Duration(maxWait.Load()), want)
		}
		if _, _, waits := obs.snapshot(); len(waits) != n-burst {
			t.Fatalf("RateWaited called %d times, want %d", len(waits), n-burst)
		}
	})
}

func TestRateLimitAppliesToEachAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{statuses: []int{503, 503, 200}}
		c := fakeClient(t, s, func(cfg *Config) {
			cfg.Rate = 1
			cfg.Burst = 1
		})
		c.jitter = func(time.Duration) time.Duration { return 0 }
		start := time.Now()
		resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
		if err != nil || resp.Attempts != 3 {
			t.Fatalf("Do: %v, %+v", err, resp)
		}
		if got := time.Since(start); got != 2*time.Second || resp.RateWait != 2*time.Second || resp.Duration != 2*time.Second {
			t.Fatalf("elapsed %v, RateWait %v, Duration %v; want 2s each", got, resp.RateWait, resp.Duration)
		}
	})
}

func TestBackoffWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{statuses: []int{503, 502, 504, 200}}
		c := fakeClient(t, s, func(cfg *Config) {
			cfg.MaxAttempts = 4
			cfg.BackoffBase = 500 * time.Millisecond
			cfg.BackoffMax = 700 * time.Millisecond
		})
		c.jitter = func(max time.Duration) time.Duration { return max } // worst case of full jitter
		start := time.Now()
		resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
		if err != nil || resp.Attempts != 4 {
			t.Fatalf("Do: %v, %+v", err, resp)
		}
		var got []time.Duration
		for _, at := range s.attemptTimes() {
			got = append(got, at.Sub(start))
		}
		want := []time.Duration{0, 500 * time.Millisecond, 1200 * time.Millisecond, 1900 * time.Millisecond}
		if !slices.Equal(got, want) {
			t.Fatalf("attempts at %v, want %v", got, want)
		}
	})
}

func TestBackoffDefaultJitterWithinCeiling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{statuses: []int{503}}
		c := fakeClient(t, s, func(cfg *Config) {
			cfg.MaxAttempts = 5
			cfg.BackoffBase = time.Second
			cfg.BackoffMax = 3 * time.Second
		})
		_, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 503 {
			t.Fatalf("err = %v", err)
		}
		times := s.attemptTimes()
		ceilings := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}
		if len(times) != 5 {
			t.Fatalf("%d attempts", len(times))
		}
		for i, ceiling := range ceilings {
			if gap := times[i+1].Sub(times[i]); gap < 0 || gap > ceiling {
				t.Fatalf("gap %d = %v, want within [0, %v]", i, gap, ceiling)
			}
		}
	})
}

func TestRetryAfterHonoured(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		header   func() string
		jitter   func(time.Duration) time.Duration
		wantGap  time.Duration
		attempts int
	}{
		{"429 delta seconds", 429, func() string { return "2" }, func(time.Duration) time.Duration { return 0 }, 2 * time.Second, 2},
		{"503 http date", 503, func() string { return time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) }, func(time.Duration) time.Duration { return 0 }, 3 * time.Second, 2},
		{"backoff larger than Retry-After", 429, func() string { return "0" }, func(max time.Duration) time.Duration { return max }, 500 * time.Millisecond, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{statuses: []int{tc.status, 200}, headers: [][]string{{"Retry-After", tc.header()}}}
				c := fakeClient(t, s, nil)
				c.jitter = tc.jitter
				resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
				if err != nil || resp.Attempts != tc.attempts {
					t.Fatalf("Do: %v, %+v", err, resp)
				}
				times := s.attemptTimes()
				if gap := times[1].Sub(times[0]); gap != tc.wantGap {
					t.Fatalf("second attempt after %v, want %v", gap, tc.wantGap)
				}
			})
		})
	}
}

func TestRetryAfterBeyondBackoffMaxGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{statuses: []int{429, 200}, headers: [][]string{{"Retry-After", "30"}}}
		c := fakeClient(t, s, nil) // BackoffMax defaults to 10s
		start := time.Now()
		resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 429 {
			t.Fatalf("err = %v", err)
		}
		if resp.Attempts != 1 || time.Since(start) != 0 || len(s.attemptTimes()) != 1 {
			t.Fatalf("should give up at once: %+v after %v", resp, time.Since(start))
		}
	})
}

func TestPerAttemptTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     time.Duration
		req     time.Duration
		timeout time.Duration
	}{
		{"request timeout", 30 * time.Second, 5 * time.Second, 5 * time.Second},
		{"config timeout", 7 * time.Second, 0, 7 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				rt := rtFunc(func(req *http.Request) (*http.Response, error) {
					calls.Add(1)
					<-req.Context().Done() // a backend that never answers
					return nil, req.Context().Err()
				})
				c := fakeClient(t, rt, func(cfg *Config) { cfg.Timeout = tc.cfg })
				start := time.Now()
				resp, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x", Timeout: tc.req})
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v", err)
				}
				if got := time.Since(start); got != tc.timeout {
					t.Fatalf("returned after %v, want %v", got, tc.timeout)
				}
				if calls.Load() != 1 || resp.Attempts != 1 {
					t.Fatalf("a timed-out attempt must not be retried: %d calls", calls.Load())
				}
			})
		})
	}
}

func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{statuses: []int{503}}
		c := fakeClient(t, s, func(cfg *Config) {
			cfg.BackoffBase = 10 * time.Second
			cfg.BackoffMax = 20 * time.Second
		})
		c.jitter = func(max time.Duration) time.Duration { return max }
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		resp, err := c.Do(ctx, Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
		if got := time.Since(start); got != time.Second {
			t.Fatalf("returned after %v, want 1s", got)
		}
		var se *StatusError
		if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.Status != 503 {
			t.Fatalf("err = %v, want canceled with the last 503", err)
		}
		if resp.Attempts != 1 || resp.Status != 503 {
			t.Fatalf("resp = %+v", resp)
		}
	})
}

func TestCancelDuringRateWaitAndAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		var calls atomic.Int32
		rt := rtFunc(func(req *http.Request) (*http.Response, error) {
			calls.Add(1)
			if req.URL.Path == "/block" {
				select {
				case <-req.Context().Done():
					return nil, req.Context().Err()
				case <-block:
				}
			}
			return fakeResponse(req, 200, `{}`), nil
		})
		c := fakeClient(t, rt, func(cfg *Config) {
			cfg.Rate = 1
			cfg.Burst = 1
		})
		if _, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"}); err != nil {
			t.Fatal(err)
		}
		// The limiter is empty now: the next call waits 1s; cancel it at 100ms.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		resp, err := c.Do(ctx, Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 100*time.Millisecond || resp.Attempts != 0 {
			t.Fatalf("err %v after %v, %+v", err, time.Since(start), resp)
		}
		if resp.RateWait != 100*time.Millisecond {
			t.Fatalf("RateWait = %v", resp.RateWait)
		}

		// Cancel while an attempt is in flight: no retry.
		time.Sleep(time.Second) // refill
		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		before := calls.Load()
		start = time.Now()
		resp, err = c.Do(ctx, Request{Service: task.ServiceBackend, Method: "POST", Path: "/block"})
		if !errors.Is(err, context.Canceled) || time.Since(start) != 300*time.Millisecond {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
		if calls.Load()-before != 1 || resp.Attempts != 1 {
			t.Fatalf("cancelled attempt retried: %d calls", calls.Load()-before)
		}
		close(block)
	})
}

func TestTransportErrorClassification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		fail := errors.New("tls: bad certificate")
		rt := rtFunc(func(*http.Request) (*http.Response, error) {
			calls.Add(1)
			return nil, fail
		})
		c := fakeClient(t, rt, nil)
		_, err := c.Do(context.Background(), Request{Service: task.ServiceBackend, Method: "POST", Path: "/x"})
		if !errors.Is(err, fail) || calls.Load() != 1 {
			t.Fatalf("non-transient transport error: err %v, %d calls", err, calls.Load())
		}
	})
}
