package apiclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/mojodex/mojodex-scheduler/task"
)

// RunRequest hands one whole run of an HTTP task to the API-client actor:
// send it as a pointer (engine.Send(api, &RunRequest{…})). The actor drives
// every page (rate limit, in-flight budget, retries, pagination) and reports
// to Sink: Progress after each full page, Finish once at the end.
type RunRequest struct {
	// Task is the task's name (logs, metrics, idempotency keys).
	Task string
	// Request is the call made on every page.
	Request *task.Request
	// Paginate, when not nil, pages through a batch endpoint.
	Paginate *task.Paginate
	// Slot is the run's slot; idempotency keys derive from task, slot and page.
	Slot time.Time
	// From is the progress to resume from (zero for a new run).
	From task.Progress
	// Timeout bounds each attempt (0: the client's timeout).
	Timeout time.Duration
	// Deadline ends the run, failed, if it is not done by then (zero: none).
	Deadline time.Time
	// Ctx is cancelled when the run was ended elsewhere (its deadline
	// passed, its task was stopped): the actor then drops it.
	Ctx context.Context
	// Sink receives the run's progress and its result.
	Sink RunSink
	// Lease, when not nil, tells whether this replica still holds the run
	// (replicas sharing a store): no page is sent once it may have lapsed;
	// the run waits until it is renewed, or until its owner drops it.
	Lease Lease
}

// Lease tells whether a run's lease still holds.
type Lease interface {
	// Valid reports whether the lease holds at now.
	Valid(now time.Time) bool
}

// RunSink receives the progress and the result of a run. Its methods are
// called from the API-client actor's goroutine: they must be quick and must
// not block.
type RunSink interface {
	// Progress is called after a page answered with a full list: it is
	// the run's checkpoint. The next page is requested only once saved
	// has been called (from any goroutine, once): a sink that stores the
	// checkpoint calls it when the checkpoint is durable, so that a page
	// answered is never requested again after a crash.
	Progress(p task.Progress, status int, saved func())
	// Finish is called once, when the run ends.
	Finish(r RunResult)
}

// RunResult is how a run handed to the API-client actor ended.
type RunResult struct {
	// Outcome is ok, failed or skipped.
	Outcome task.Outcome
	// Reason says why a skipped run did not start (task.SkipQueueFull).
	Reason task.SkipReason
	// Progress counts the pages answered, the items seen and the next offset.
	Progress task.Progress
	// Status is the HTTP status of the last reply (0 when none).
	Status int
	// Err says why the run failed; it never contains the secret.
	Err error
}

// IdempotencyKey is the Idempotency-Key of a page of a task's run for a
// slot: the same on every retry, after a restart and on another replica,
// so a backend can drop duplicates.
func IdempotencyKey(taskName string, slot time.Time, page int) string {
	sum := sha256.Sum256([]byte(taskName + "\x00" + strconv.FormatInt(slot.UnixNano(), 10) + "\x00" + strconv.Itoa(page)))
	return hex.EncodeToString(sum[:16])
}

// CountList checks that body is a JSON object and returns the length of the
// list under key (when key is empty, only the object is checked). Any other
// shape is an error quoting the first 200 bytes of the body, with the
// secret redacted.
func (c *Client) CountList(body []byte, key string) (int, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return 0, fmt.Errorf("reply is not a JSON object: %s", c.Snippet(body))
	}
	if key == "" {
		return 0, nil
	}
	raw, ok := obj[key]
	if !ok {
		return 0, fmt.Errorf("reply has no %q list: %s", key, c.Snippet(body))
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return 0, fmt.Errorf("reply's %q is not a list: %s", key, c.Snippet(body))
	}
	return len(list), nil
}

// Snippet quotes at most the first 200 bytes of b, with the secret
// redacted (a secret cut by the 200-byte boundary is redacted too) and
// every control character escaped.
func (c *Client) Snippet(b []byte) string {
	s, cut := c.excerpt(string(b))
	if cut {
		return strconv.Quote(s) + "..."
	}
	return strconv.Quote(s)
}
