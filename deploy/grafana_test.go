package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const dashboardFile = "deploy/grafana/mojodex-scheduler.json"

// dashboard is the part of a Grafana dashboard these tests read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // inside a collapsed row
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	return d
}

// queries returns every PromQL expression of the dashboard, named by where
// it is: the panels' targets and the variables' label_values queries.
func (d dashboard) queries(t *testing.T) map[string]string {
	t.Helper()
	q := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				q[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var query struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &query); err != nil {
			t.Fatalf("variable %s: query: %v", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(query.Query)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(SELECTOR, LABEL)", v.Name, query.Query)
			continue
		}
		q["variable "+v.Name] = m[1]
	}
	return q
}

func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q, uid %q: both are needed to import and link the dashboard", d.Title, d.UID)
	}
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
			}
			if p.Type != "row" {
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q does not use the datasource variable", p.Title)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	// What an operator looks for first.
	exprs := strings.Join(values(d.queries(t)), "\n")
	for _, want := range []string{
		"mojodex_scheduler_runs_total", "mojodex_scheduler_fire_lateness_seconds_bucket",
		"mojodex_scheduler_task_state", "mojodex_scheduler_api_calls_total",
		"mojodex_scheduler_task_last_success_timestamp_seconds",
	} {
		if !strings.Contains(exprs, want) {
			t.Errorf("no panel shows %s", want)
		}
	}
	if !strings.Contains(exprs, "histogram_quantile(0.99") {
		t.Error("no panel shows a p99 lateness")
	}
}

// Every expression uses only series the scheduler exports.
func TestDashboardUsesKnownSeries(t *testing.T) {
	known := knownSeries()
	q := loadDashboard(t).queries(t)
	if len(q) == 0 {
		t.Fatal("the dashboard has no query")
	}
	for where, expr := range q {
		if strings.TrimSpace(expr) == "" {
			t.Errorf("%s: empty expression", where)
		}
		if names := metricNames(expr); len(names) == 0 {
			t.Errorf("%s: selects no series: %s", where, expr)
		}
		if bad := unknownSeries(expr, known); len(bad) > 0 {
			t.Errorf("%s uses series the scheduler does not export: %v", where, bad)
		}
	}
}

// Every expression parses: promtool checks them as recording rules, with
// Grafana's variables replaced by what Grafana would put there.
func TestDashboardExpressionsParse(t *testing.T) {
	promtool := needTool(t, "promtool", promtoolInstall)
	q := loadDashboard(t).queries(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	var where []string
	for w, expr := range q {
		e := grafanaMacros.Replace(expr)
		e = strings.NewReplacer(`"$job"`, `".*"`, `"$instance"`, `".*"`).Replace(e)
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:expr_%d", len(rules)), Expr: e})
		where = append(where, w)
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	raw, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool: %v\n%s\nrules (in order: %s):\n%s", err, out, strings.Join(where, "; "), raw)
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
