package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = ".."

// inCI reports whether the tests run under CI (CI=true), where the tools
// installed by .ci/run must be there.
func inCI() bool { return os.Getenv("CI") == "true" }

// needTool returns the path of name. Without it the test is skipped, or
// fails under CI=true, with install as the hint.
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if inCI() {
		t.Fatalf("%s is missing under CI=true (%s; .ci/run installs it)", name, install)
	}
	t.Skipf("%s is not installed (%s)", name, install)
	return ""
}

// readFile reads a file of the repository, by its path from the root.
func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
