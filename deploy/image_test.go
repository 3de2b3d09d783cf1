package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
)

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct {
	op, args string
}

func containerfile(t *testing.T) []instruction {
	t.Helper()
	var out []instruction
	var cur string
	for _, line := range strings.Split(string(readFile(t, "Containerfile")), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		op, args, _ := strings.Cut(cur, " ")
		out = append(out, instruction{strings.ToUpper(op), strings.TrimSpace(args)})
		cur = ""
	}
	return out
}

// The image pulls nothing, runs as a non-root user, keeps its state on the
// /data volume and checks its own health with the binary.
func TestContainerfile(t *testing.T) {
	ins := containerfile(t)
	args := map[string][]string{}
	for _, in := range ins {
		args[in.op] = append(args[in.op], in.args)
	}
	if !slices.Equal(args["FROM"], []string{"scratch"}) {
		t.Errorf("FROM %v; the image must build from scratch alone (nothing to pull)", args["FROM"])
	}
	if len(args["RUN"]) > 0 {
		t.Errorf("RUN %v: a scratch image has no shell", args["RUN"])
	}
	if u := args["USER"]; len(u) != 1 || !regexp.MustCompile(`^[1-9][0-9]*:[1-9][0-9]*$`).MatchString(u[0]) {
		t.Errorf("USER %v; want one numeric non-root uid:gid", u)
	}
	env := strings.Join(args["ENV"], " ")
	for _, want := range []string{"MOJODEX_SCHEDULER_STATE=/data/mojodex-scheduler.db", "MOJODEX_SCHEDULER_HTTP_ADDR=0.0.0.0:9464"} {
		if !strings.Contains(env, want) {
			t.Errorf("ENV lacks %s", want)
		}
	}
	if !slices.Contains(args["VOLUME"], `["/data"]`) {
		t.Errorf("VOLUME %v; want [\"/data\"]", args["VOLUME"])
	}
	if hc := args["HEALTHCHECK"]; len(hc) != 1 || !strings.HasSuffix(hc[0], `CMD ["/mojodex-scheduler", "health"]`) {
		t.Errorf("HEALTHCHECK %v; want the exec form of /mojodex-scheduler health", hc)
	}
	if !slices.Equal(args["ENTRYPOINT"], []string{`["/mojodex-scheduler"]`}) {
		t.Errorf("ENTRYPOINT %v", args["ENTRYPOINT"])
	}
	labels := strings.Join(args["LABEL"], " ")
	for _, l := range []string{"title", "description", "licenses", "source", "version", "revision", "created"} {
		if !strings.Contains(labels, "org.opencontainers.image."+l+"=") {
			t.Errorf("LABEL lacks org.opencontainers.image.%s", l)
		}
	}
}

// buildah runs buildah on a storage of its own, so that the test leaves
// nothing in the machine's image store.
type buildah struct {
	t      *testing.T
	global []string // buildah's global options
}

func (b buildah) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "buildah", append(slices.Clone(b.global), args...)...)
}

// run runs buildah with args and returns its stdout; it fails the test on
// an error unless mayFail.
func (b buildah) run(mayFail bool, args ...string) (string, string, error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := b.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil && !mayFail {
		b.t.Fatalf("buildah %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String(), err
}

// TestImage builds the image with `make image` and buildah, then runs the
// binary inside it (buildah run, chroot isolation, the host's loopback):
// version, validate, once against a stub of the Mojodex services, and run
// with its health check as the image declares it.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	needTool(t, "buildah", "apt-get install buildah")
	needTool(t, "make", "apt-get install make")
	if os.Geteuid() != 0 {
		if inCI() {
			t.Fatal("buildah needs root here")
		}
		t.Skip("buildah needs root here")
	}
	tmp := t.TempDir()
	b := buildah{t: t, global: []string{"--root", filepath.Join(tmp, "storage"), "--runroot", filepath.Join(tmp, "run"), "--storage-driver", "vfs"}}
	const image = "localhost/mojodex-scheduler-test"
	const version = "v9.8.7-test"

	start := time.Now()
	mk := exec.Command("make", "-C", repoRoot, "image",
		"CONTAINER_TOOL=buildah",
		"BUILDAH=buildah "+strings.Join(b.global, " "),
		"IMAGE="+image, "IMAGE_TAG=test", "VERSION="+version,
		"BIN="+filepath.Join(tmp, "bin", "mojodex-scheduler"),
		"IMAGE_CONTEXT="+filepath.Join(tmp, "context"))
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image: %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { b.run(true, "rmi", "--force", image+":test", image+":latest") })

	// What the image declares.
	raw, _, _ := b.run(false, "inspect", "--type", "image", image+":test")
	var info struct {
		Docker struct {
			Config struct {
				User        string
				Env         []string
				Entrypoint  []string
				Cmd         []string
				Volumes     map[string]any
				Labels      map[string]string
				Healthcheck *struct{ Test []string }
			} `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		t.Fatalf("buildah inspect: %v\n%s", err, raw)
	}
	cfg := info.Docker.Config
	if cfg.User != "65532:65532" {
		t.Errorf("user %q; want 65532:65532", cfg.User)
	}
	if cfg.Healthcheck == nil || !slices.Equal(cfg.Healthcheck.Test, []string{"CMD", "/mojodex-scheduler", "health"}) {
		t.Errorf("health check %+v; want CMD /mojodex-scheduler health (is the image in docker format?)", cfg.Healthcheck)
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Errorf("volumes %v; want /data", cfg.Volumes)
	}
	if !slices.Contains(cfg.Env, "MOJODEX_SCHEDULER_STATE=/data/mojodex-scheduler.db") {
		t.Errorf("env %v", cfg.Env)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/mojodex-scheduler"}) || !slices.Equal(cfg.Cmd, []string{"run"}) {
		t.Errorf("entrypoint %v cmd %v", cfg.Entrypoint, cfg.Cmd)
	}
	if v := cfg.Labels["org.opencontainers.image.version"]; v != "test" {
		t.Errorf("version label %q; want the image tag", v)
	}

	container, _, _ := b.run(false, "from", "--name", fmt.Sprintf("mojodex-scheduler-test-%d", os.Getpid()), image+":test")
	container = strings.TrimSpace(container)
	t.Cleanup(func() { b.run(true, "rm", container) })
	inside := func(mayFail bool, env []string, args ...string) (string, string, error) {
		t.Helper()
		a := []string{"run", "--isolation", "chroot"}
		for _, e := range env {
			a = append(a, "--env", e)
		}
		a = append(append(a, container, "--", "/mojodex-scheduler"), args...)
		return b.run(mayFail, a...)
	}

	// version: the ldflags of make build reached the binary.
	out, _, _ := inside(false, nil, "version")
	if !strings.HasPrefix(out, "mojodex-scheduler "+version+"\n") {
		t.Errorf("version in the image:\n%s", out)
	}
	if commit, err := exec.Command("git", "-C", repoRoot, "rev-parse", "HEAD").Output(); err == nil {
		if !strings.Contains(out, "commit  "+strings.TrimSpace(string(commit))) {
			t.Errorf("version in the image does not name commit %s:\n%s", commit, out)
		}
	}

	// validate: with Mojodex's settings, and without.
	stub, err := mojodexstub.Start(mojodexstub.Options{Secret: "image-test-secret", EmailConfigured: true, Backlog: mojodexstub.DefaultBacklog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stub.Close() })
	mojodexEnv := []string{
		"MOJODEX_BACKEND_URI=" + stub.BackendURL(),
		"BACKGROUND_BACKEND_URI=" + stub.BackgroundURL(),
		"MOJODEX_SCHEDULER_SECRET=image-test-secret",
		"MOJODEX_SCHEDULER_REMOTE_ADDR=off",
	}
	out, _, _ = inside(false, mojodexEnv, "validate")
	if !strings.Contains(out, "configuration is valid: 7 tasks") {
		t.Errorf("validate in the image:\n%s", out)
	}
	out, errOut, err := inside(true, nil, "validate")
	if err == nil || !strings.Contains(out+errOut, "MOJODEX_BACKEND_URI") {
		t.Errorf("validate without settings: %v\n%s%s", err, out, errOut)
	}

	// once: the image reaches the services (CA-less http here) as its user.
	out, _, _ = inside(false, mojodexEnv, "once", "extract-todos")
	if !strings.Contains(out, "extract-todos") || len(stub.CallsTo("/extract_todos")) != 1 {
		t.Errorf("once extract-todos in the image: %d calls\n%s", len(stub.CallsTo("/extract_todos")), out)
	}

	// The volume's mount point belongs to the image's user, so that a
	// named volume (which takes the image's /data) is writable.
	mount, _, _ := b.run(false, "mount", container)
	st, err := os.Stat(filepath.Join(strings.TrimSpace(mount), "data"))
	if err != nil {
		t.Fatalf("/data in the image: %v", err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Uid != 65532 || sys.Gid != 65532 || !st.IsDir() {
		t.Errorf("/data in the image: %v %+v; want a directory of 65532:65532", st.Mode(), st.Sys())
	}
	b.run(false, "umount", container)

	// run, and the image's health check against it: the scheduler writes
	// its state to the /data volume as user 65532.
	_, port, _ := net.SplitHostPort(testnet.FreeAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runArgs := []string{"run", "--isolation", "chroot"}
	for _, e := range append(mojodexEnv, "MOJODEX_SCHEDULER_HTTP_ADDR=127.0.0.1:"+port, "LOG_FORMAT=json") {
		runArgs = append(runArgs, "--env", e)
	}
	serve := b.command(ctx, append(runArgs, container, "--", "/mojodex-scheduler", "run")...)
	var serveLog bytes.Buffer
	serve.Stdout, serve.Stderr = &serveLog, &serveLog
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := serve.Start(); err != nil {
		t.Fatalf("buildah run ... run: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-serve.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = serve.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-serve.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(stop)

	healthEnv := []string{"MOJODEX_SCHEDULER_HTTP_ADDR=0.0.0.0:" + port} // as in the image: probed on loopback
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, err := inside(true, healthEnv, "health")
		if err == nil {
			if !strings.Contains(out, "ready: http://127.0.0.1:"+port+"/readyz") {
				t.Errorf("health: %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the image's health check never passed: %v\n%s%s\nscheduler log:\n%s", err, out, errOut, serveLog.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	probes := stub.CallsTo("/is_email_service_configured")
	if len(probes) == 0 || probes[0].Auth != "image-test-secret" || probes[0].Status != 200 {
		t.Errorf("the scheduler in the image did not probe the email gate with the secret: %+v", probes)
	}
	stop()

	// buildah gives the image's VOLUME a directory of its own in the
	// container's storage, initialised from the image's /data as a named
	// volume is.
	dbs, _ := filepath.Glob(filepath.Join(tmp, "storage", "*-containers", "*", "userdata", "buildah-volumes", "*", "mojodex-scheduler.db"))
	if len(dbs) != 1 {
		t.Fatalf("state files on the volume: %v; want one\nscheduler log:\n%s", dbs, serveLog.String())
	}
	st, err = os.Stat(dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Uid != 65532 {
		t.Errorf("the state file belongs to %+v; want uid 65532", st.Sys())
	}
}
