package deploy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mojodex/mojodex-scheduler/config"
)

// composeService is the part of a compose service these tests read.
type composeService struct {
	Image         string   `yaml:"image"`
	Build         any      `yaml:"build"`
	ContainerName string   `yaml:"container_name"`
	EnvFile       []string `yaml:"env_file"`
	Volumes       []string `yaml:"volumes"`
	DependsOn     map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		StartPeriod string   `yaml:"start_period"`
		Retries     int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Restart         string   `yaml:"restart"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	Ports           []string `yaml:"ports"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	decodeYAML(t, "deploy/compose/compose.yaml", &c)
	return c
}

// The service takes the place of Mojodex's Python scheduler: same service
// and container names, Mojodex's .env, a named volume on /data, the image's
// health check, ordered after the services it calls.
func TestComposeService(t *testing.T) {
	c := loadCompose(t)
	if len(c.Services) != 1 {
		t.Fatalf("services %v; want mojodex-scheduler alone", c.Services)
	}
	s, ok := c.Services["mojodex-scheduler"]
	if !ok {
		t.Fatalf("no mojodex-scheduler service (the name of the service it replaces)")
	}
	if s.ContainerName != "mojodex_scheduler" {
		t.Errorf("container_name %q; Mojodex's is mojodex_scheduler", s.ContainerName)
	}
	if s.Image == "" || s.Build != nil {
		t.Errorf("image %q, build %v: the service runs the built image and builds nothing", s.Image, s.Build)
	}
	if !slices.Equal(s.EnvFile, []string{".env"}) {
		t.Errorf("env_file %v; want Mojodex's .env", s.EnvFile)
	}
	if len(s.Volumes) != 1 {
		t.Fatalf("volumes %v; want one", s.Volumes)
	}
	name, target, _ := strings.Cut(s.Volumes[0], ":")
	if target != "/data" || strings.ContainsAny(name, "./") {
		t.Errorf("volume %q; want a named volume on /data", s.Volumes[0])
	}
	if _, declared := c.Volumes[name]; !declared {
		t.Errorf("volume %q is not declared under the top-level volumes", name)
	}
	for dep, cond := range map[string]string{"mojodex-backend": "service_healthy", "mojodex-background": "service_started"} {
		if got, ok := s.DependsOn[dep]; !ok || got.Condition != cond {
			t.Errorf("depends_on %s: %+v; want condition %s", dep, got, cond)
		}
	}
	switch s.Restart {
	case "always", "unless-stopped", "on-failure":
	default:
		t.Errorf("restart %q; want the service restarted", s.Restart)
	}
	for _, p := range s.Ports {
		if strings.Contains(p, "4000") {
			t.Errorf("ports %v publish the remote control endpoint", s.Ports)
		}
	}
}

// The health check is the image's, with a timeout above the probe's own.
func TestComposeHealthcheck(t *testing.T) {
	s := loadCompose(t).Services["mojodex-scheduler"]
	if !slices.Equal(s.Healthcheck.Test, []string{"CMD", "/mojodex-scheduler", "health"}) {
		t.Errorf("healthcheck test %v", s.Healthcheck.Test)
	}
	for _, in := range containerfile(t) {
		if in.op == "HEALTHCHECK" && !strings.HasSuffix(in.args, `CMD ["/mojodex-scheduler", "health"]`) {
			t.Errorf("the Containerfile checks health with %q, compose with %v", in.args, s.Healthcheck.Test)
		}
	}
	timeout, err := time.ParseDuration(s.Healthcheck.Timeout)
	if err != nil || timeout <= 2*time.Second {
		t.Errorf("healthcheck timeout %q (%v); want more than the probe's own 2s", s.Healthcheck.Timeout, err)
	}
	if _, err := time.ParseDuration(s.Healthcheck.Interval); err != nil {
		t.Errorf("healthcheck interval: %v", err)
	}
	if s.Healthcheck.Retries < 1 {
		t.Errorf("healthcheck retries %d", s.Healthcheck.Retries)
	}
}

// docker stop waits longer than the scheduler's shutdown timeout.
func TestComposeStopGrace(t *testing.T) {
	s := loadCompose(t).Services["mojodex-scheduler"]
	cfg, _, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	grace, err := time.ParseDuration(s.StopGracePeriod)
	if err != nil || grace <= cfg.ShutdownTimeout {
		t.Errorf("stop_grace_period %q (%v); want more than MOJODEX_SCHEDULER_SHUTDOWN_TIMEOUT's default %s", s.StopGracePeriod, err, cfg.ShutdownTimeout)
	}
}

// The README says plainly that the Python scheduler must go.
func TestComposeReadme(t *testing.T) {
	readme := string(readFile(t, "deploy/compose/README.md"))
	for _, want := range []string{"Remove the Python scheduler", "every job is called twice", "compose.yaml"} {
		if !strings.Contains(readme, want) {
			t.Errorf("deploy/compose/README.md does not say %q", want)
		}
	}
}
