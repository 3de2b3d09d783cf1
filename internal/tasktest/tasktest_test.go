package tasktest

import "testing"

func TestDefaultSpec(t *testing.T) {
	if s := DefaultSpec(t, "extract-todos"); s.Name != "extract-todos" || s.Request == nil || s.Request.Path != "/extract_todos" {
		t.Errorf("extract-todos: %+v", s)
	}
}
