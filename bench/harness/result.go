package harness

import "time"

// Result is what one benchmark process reports to the driver: one line of
// JSON on its standard output, prefixed by ResultPrefix.
type Result struct {
	Scenario  int    `json:"scenario"`
	Scheduler string `json:"scheduler"` // ours, robfig, gocron, none
	// Store is the state store of ours in a fire scenario: memory or bolt
	// (a bbolt file in a temporary directory, as the service deploys it).
	Store   string `json:"store,omitempty"`
	Variant string `json:"variant,omitempty"`
	Short   bool   `json:"short"`

	// Fire scenarios (1-3).
	N        int           `json:"n,omitempty"`
	Period   time.Duration `json:"period_ns,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Grace    time.Duration `json:"grace_ns,omitempty"`
	// Setup is from the start of the scheduler's construction to the moment
	// every task was registered (ours: the last task actor armed).
	Setup  time.Duration `json:"setup_ns,omitempty"`
	Margin time.Duration `json:"margin_ns,omitempty"`
	Fires  *Counts       `json:"fires,omitempty"`
	// Lateness of the delivered fires (negative lateness counts as 0).
	P50   time.Duration `json:"p50_ns,omitempty"`
	P99   time.Duration `json:"p99_ns,omitempty"`
	P999  time.Duration `json:"p999_ns,omitempty"`
	Max   time.Duration `json:"max_ns,omitempty"`
	Mean  time.Duration `json:"mean_ns,omitempty"`
	Min   time.Duration `json:"min_ns,omitempty"`
	Early uint64        `json:"early,omitempty"`
	// Missed and Skipped are ours' Observer.Missed slots and Skipped fires.
	Missed  uint64   `json:"missed,omitempty"`
	Skipped uint64   `json:"skipped,omitempty"`
	Hist    []Bucket `json:"-"`

	// Usage over the measured window (fire scenarios: anchor to anchor +
	// duration + grace; idle: the idle window) and over the whole process.
	Window      time.Duration `json:"window_ns,omitempty"`
	CPUWindow   time.Duration `json:"cpu_window_ns"`
	CPUTotal    time.Duration `json:"cpu_total_ns"`
	PeakRSS     int64         `json:"peak_rss"`
	WakeWindow  int64         `json:"voluntary_switches_window"`
	HeapInUse   uint64        `json:"heap_inuse,omitempty"`
	Peaks       *Peaks        `json:"peaks,omitempty"`
	Goroutines  int           `json:"goroutines,omitempty"`
	StubCalls   int           `json:"stub_calls,omitempty"`
	CPUPerIdleM time.Duration `json:"cpu_per_idle_minute_ns,omitempty"`

	// Replicas of ours sharing a PostgreSQL store (a fire scenario with
	// -store postgres): how many, each one's CPU time over the window, the
	// CPU time of every PostgreSQL process over the window, the statements
	// the replicas sent over the window (all of them, and those of the
	// commits that carried claims) and the transactions the server
	// committed over it (pg_stat_database).
	Replicas        int             `json:"replicas,omitempty"`
	ReplicaCPU      []time.Duration `json:"replica_cpu_ns,omitempty"`
	DBCPU           time.Duration   `json:"db_cpu_ns,omitempty"`
	Statements      uint64          `json:"statements,omitempty"`
	ClaimStatements uint64          `json:"claim_statements,omitempty"`
	Transactions    uint64          `json:"transactions,omitempty"`
	// Takeovers are runs taken over after their lease lapsed (each fires
	// its slot again on the replica that took it over, counted doubled);
	// Fenced are writes refused to a replica that had lost its run;
	// ClaimsFailed are claims that could not reach the store.
	Takeovers    uint64 `json:"takeovers,omitempty"`
	Fenced       uint64 `json:"fenced,omitempty"`
	ClaimsFailed uint64 `json:"claims_failed,omitempty"`

	// API scenario (5).
	Rate        float64       `json:"rate,omitempty"` // the limit; negative: none
	Burst       int           `json:"burst,omitempty"`
	MaxInFlight int           `json:"max_in_flight,omitempty"`
	Calls       int           `json:"calls,omitempty"`
	Errors      int           `json:"errors,omitempty"`
	CallsPerSec float64       `json:"calls_per_sec,omitempty"`
	RateCheck   *RateCheck    `json:"rate_check,omitempty"`
	CallP50     time.Duration `json:"call_p50_ns,omitempty"`
	CallP99     time.Duration `json:"call_p99_ns,omitempty"`

	Notes []string `json:"notes,omitempty"`
	Error string   `json:"error,omitempty"`
}

// ResultPrefix starts the line of standard output that carries a Result.
const ResultPrefix = "SCHEDBENCH-RESULT "

// Summarise fills the lateness fields from h.
func (r *Result) Summarise(h *Histogram) {
	r.P50 = h.Quantile(0.50)
	r.P99 = h.Quantile(0.99)
	r.P999 = h.Quantile(0.999)
	r.Max = h.Max()
	r.Mean = h.Mean()
	r.Min = h.Min()
	r.Early = h.Early()
	r.Hist = h.Snapshot()
}
