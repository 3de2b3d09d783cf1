package endpoint

import (
	"errors"
	"math"
	"testing"
)

func TestDescriptorBudget(t *testing.T) {
	for _, tc := range []struct {
		limit                uint64
		maxConns, maxDests   int
		wantConns, wantDests int
	}{
		{0, 64, 64, 64, 64},              // unknown: the caps as given
		{20000, 64, 64, 64, 64},          // plenty
		{math.MaxUint64, 64, 64, 64, 64}, // RLIM_INFINITY
		{1024, 64, 64, 64, 64},           // 256 kept, 766 to share
		{512, 500, 500, 127, 127},        // 256 kept, 254 shared
		{256, 64, 64, 63, 63},            // half kept: 126 shared
		{64, 64, 64, 15, 15},             // half kept: 30 shared
		{4, 64, 64, 1, 1},                // never below 1
		{1, 64, 64, 1, 1},
	} {
		c, d := descriptorBudget(tc.limit, tc.maxConns, tc.maxDests)
		if c != tc.wantConns || d != tc.wantDests {
			t.Errorf("limit %d, caps %d/%d: %d/%d, want %d/%d", tc.limit, tc.maxConns, tc.maxDests, c, d, tc.wantConns, tc.wantDests)
		}
		if tc.limit >= 8 && uint64(c+d) > tc.limit/2+2 && tc.limit <= 1024 {
			t.Errorf("limit %d: %d descriptors for the endpoint leave too few for the process", tc.limit, c+d)
		}
	}
}

// The caps in force follow the descriptor limit read at Listen, and a
// limit that cannot be read leaves the options' caps.
func TestListenLowersCaps(t *testing.T) {
	low := WithMaxConns(64)
	limit := func(n uint64, err error) Option {
		return func(s *settings) error {
			s.openFileLimit = func() (uint64, error) { return n, err }
			return nil
		}
	}
	ep, err := Listen("127.0.0.1:0", low, limit(64, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Stop()
	if st := ep.Stats(); st.MaxConns != 15 || st.MaxDestinations != 15 {
		t.Errorf("limit 64: caps %d/%d, want 15/15", st.MaxConns, st.MaxDestinations)
	}
	ep2, err := Listen("127.0.0.1:0", low, limit(0, errors.New("no rlimit")))
	if err != nil {
		t.Fatal(err)
	}
	defer ep2.Stop()
	if st := ep2.Stats(); st.MaxConns != 64 || st.MaxDestinations != DefaultMaxDestinations {
		t.Errorf("unknown limit: caps %d/%d", st.MaxConns, st.MaxDestinations)
	}
}
