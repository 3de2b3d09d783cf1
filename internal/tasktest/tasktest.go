// Package tasktest holds task fixtures shared by the tests of several
// packages.
package tasktest

import (
	"testing"

	"github.com/mojodex/mojodex-scheduler/task"
)

// DefaultSpec returns the Mojodex default task called name (see
// task.Defaults), and fails the test when there is none.
func DefaultSpec(t testing.TB, name string) task.Spec {
	t.Helper()
	specs, err := task.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no default task %q", name)
	return task.Spec{}
}
