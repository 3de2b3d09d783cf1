package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const promtoolInstall = "apt-get install prometheus"

// ruleFile is the part of a Prometheus rule file these tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleTests is the part of a promtool test file these tests read.
type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func decodeYAML(t *testing.T, rel string, v any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, rel)))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// Every alert uses only the scheduler's series (plus up and the process
// start time), and tells an operator what to do.
func TestAlertRulesShape(t *testing.T) {
	var rf ruleFile
	decodeYAML(t, "deploy/prometheus/alerts.yaml", &rf)
	known := knownSeries("up", "process_start_time_seconds")
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert name (record %q)", g.Name, r.Record)
				continue
			}
			alerts++
			if bad := unknownSeries(r.Expr, known); len(bad) > 0 {
				t.Errorf("%s uses series the scheduler does not export: %v", r.Alert, bad)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q; want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if len(strings.TrimSpace(r.Annotations[a])) < 20 {
					t.Errorf("%s: annotation %s is missing or too short: %q", r.Alert, a, r.Annotations[a])
				}
			}
		}
	}
	for _, want := range []string{"MojodexSchedulerDown", "MojodexSchedulerNotReady", "MojodexSchedulerTaskFailed",
		"MojodexSchedulerTaskLate", "MojodexSchedulerBackendForbidden", "MojodexSchedulerBackendClientErrors"} {
		if !strings.Contains(string(readFile(t, "deploy/prometheus/alerts.yaml")), "alert: "+want+"\n") {
			t.Errorf("alerts.yaml has no %s", want)
		}
	}
	if alerts == 0 {
		t.Fatal("alerts.yaml has no alert")
	}
}

// alerts_test.yaml shows every alert both firing and not firing.
func TestAlertRulesAllTested(t *testing.T) {
	var rf ruleFile
	decodeYAML(t, "deploy/prometheus/alerts.yaml", &rf)
	var rt ruleTests
	decodeYAML(t, "deploy/prometheus/alerts_test.yaml", &rt)
	if len(rt.RuleFiles) != 1 || rt.RuleFiles[0] != "alerts.yaml" {
		t.Errorf("alerts_test.yaml tests %v; want alerts.yaml", rt.RuleFiles)
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range rt.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if !firing[r.Alert] {
				t.Errorf("no test shows %s firing", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("no test shows %s not firing", r.Alert)
			}
		}
	}
}

// promtool checks the rules and runs their unit tests.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := needTool(t, "promtool", promtoolInstall)
	dir := filepath.Join(repoRoot, "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// promtool would catch a broken rule: a rule file with an expression that
// does not parse fails the check.
func TestPromtoolCatchesBadRules(t *testing.T) {
	promtool := needTool(t, "promtool", promtoolInstall)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m])\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", bad).CombinedOutput(); err == nil {
		t.Errorf("promtool accepted a bad expression:\n%s", out)
	}
}
