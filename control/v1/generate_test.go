package controlv1_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// protoFile is the source of control.pb.go, relative to the repository root.
const protoFile = "proto/mojodex/scheduler/control/v1/control.proto"

// TestGeneratedCodeIsFresh regenerates control.pb.go into a temporary
// directory and fails if the committed file differs. Without protoc or
// protoc-gen-go it is skipped, except under CI (CI=true), where .ci/run
// installs both and a missing tool is an error.
func TestGeneratedCodeIsFresh(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+" (skipped locally; CI installs it)", args...)
	}
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		missing("protoc not found in PATH: apt-get install protobuf-compiler libprotobuf-dev to check that control/v1 is generated from %s", protoFile)
	}
	plugin, err := exec.LookPath("protoc-gen-go")
	if err != nil {
		gobin := filepath.Join(goPath(t), "bin", "protoc-gen-go")
		if _, serr := os.Stat(gobin); serr != nil {
			missing("protoc-gen-go not found in PATH or GOPATH/bin: run `make proto-tools`")
		}
		plugin = gobin
	}
	out := t.TempDir()
	cmd := exec.Command(protoc, "-I", filepath.Join(root, "proto"),
		"--plugin=protoc-gen-go="+plugin,
		"--go_out="+out, "--go_opt=module=github.com/mojodex/mojodex-scheduler",
		filepath.Join(root, protoFile))
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, msg)
	}
	fresh, err := os.ReadFile(filepath.Join(out, "control", "v1", "control.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(root, "control", "v1", "control.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	// The protoc version line depends on the host's protoc, not on the
	// .proto; everything else must match.
	if a, b := withoutProtocVersion(fresh), withoutProtocVersion(committed); !bytes.Equal(a, b) {
		t.Fatalf("control/v1/control.pb.go is stale: run `make proto` and commit the result\n%s", firstDifference(a, b))
	}
}

func goPath(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Logf("go env GOPATH: %v", err)
		return ""
	}
	return strings.TrimSpace(string(out))
}

func withoutProtocVersion(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	kept := lines[:0]
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte("// \tprotoc ")) {
			continue
		}
		kept = append(kept, l)
	}
	return bytes.Join(kept, []byte("\n"))
}

// firstDifference shows the first line where the generated and the
// committed files differ.
func firstDifference(fresh, committed []byte) string {
	a, b := strings.Split(string(fresh), "\n"), strings.Split(string(committed), "\n")
	for i := 0; i < len(a) || i < len(b); i++ {
		var la, lb string
		if i < len(a) {
			la = a[i]
		}
		if i < len(b) {
			lb = b[i]
		}
		if la != lb {
			return fmt.Sprintf("line %d:\n  generated: %s\n  committed: %s", i+1, la, lb)
		}
	}
	return ""
}
