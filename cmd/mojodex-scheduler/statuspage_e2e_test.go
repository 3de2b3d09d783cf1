package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/internal/testnet"
	"github.com/mojodex/mojodex-scheduler/mojodexstub"
	"google.golang.org/protobuf/encoding/protojson"
)

// This test drives headless Chromium against the binary in --demo mode:
// the status page lists the seven tasks with their next fires; a browser
// logs in, triggers a task and pauses it through the page; screenshots at
// laptop and phone widths are saved for a person to look at. Without
// Chromium it is skipped, except under CI=true, where it fails.

const e2eUIToken = "e2e-ui-token-0123456789abcdef"

// chromiumPath finds a Chromium or Chrome binary. In -short mode the
// browser tests are skipped before anything is looked for.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on PATH: CI must install it (apt-get install chromium)")
	}
	t.Skip("no Chromium on PATH (apt-get install chromium); the browser test is skipped")
	return ""
}

// screenshotDir is where the screenshots go: $TEST_OUTPUT_DIR if set, else
// the test's artifact directory (kept with go test -artifacts).
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("TEST_OUTPUT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

// statusServer runs the binary with args (against stub, unless nil) with
// the status page on a free loopback port and its actions on, and waits
// until it is ready.
func statusServer(t *testing.T, stub *mojodexstub.Stub, args ...string) (base string) {
	t.Helper()
	addr := testnet.FreeAddr(t)
	cmd := command(t, stub, args...)
	cmd.Env = append(cmd.Env, "MOJODEX_SCHEDULER_HTTP_ADDR="+addr, "MOJODEX_SCHEDULER_UI_TOKEN="+e2eUIToken)
	p := startProc(t, cmd)
	t.Cleanup(func() {
		p.terminate(t)
		if strings.Contains(p.logs.String(), e2eUIToken) {
			t.Errorf("the UI token was logged")
		}
	})
	base = "http://" + addr
	waitFor(t, "the status page", func() bool {
		code, _ := httpGet(base + "/readyz")
		return code == http.StatusOK
	})
	if !strings.Contains(p.logs.String(), `"ui_actions":true`) {
		t.Errorf("the start-up log does not say that UI actions are on:\n%s", p.logs.String())
	}
	return base
}

// apiTrigger runs a task through the JSON API (to give the screenshots some
// history).
func apiTrigger(t *testing.T, base, name string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/tasks/"+name+"/trigger", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eUIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trigger %s through the API: %d", name, resp.StatusCode)
	}
}

// tab is a headless Chromium tab driven by a test.
type tab struct {
	t   *testing.T
	ctx context.Context
	out string

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newTab starts Chromium with the flags this machine's closed network and
// root user need, and records what the pages write to the console.
func newTab(t *testing.T, chrome string) *tab {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	// Starts the browser; its life is bound to this context, not to the
	// timeout below.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, out: screenshotDir(t)}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m)
			tb.mu.Unlock()
		}
	}()
	return tb
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func (tb *tab) eval(what, js string) string {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitTrue polls a JavaScript condition for up to 20 s; the page refreshes
// itself, so no reload is needed.
func (tb *tab) waitTrue(what, js string) {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[chromedp.Void](js,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		tb.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// shot saves a screenshot of the whole page.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(tb.out, name), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// checkConsole fails the test on an exception or a refusal by the
// Content-Security-Policy (which markup injected into the page would cause).
func (tb *tab) checkConsole() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
			tb.t.Errorf("browser console: %s", m)
		}
	}
	tb.t.Logf("screenshots in %s", tb.out)
}

func TestStatusPageInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	base := statusServer(t, nil, "run", "--demo")

	tb := newTab(t, chrome)
	do, eval, waitTrue, shot := tb.do, tb.eval, tb.waitTrue, tb.shot

	// The tasks page: the seven default tasks, each with its next fire,
	// whose time the page's script wrote in the browser's words.
	do("open the tasks page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#task-rows tr.task")))
	names := eval("read the task names", `[...document.querySelectorAll('#task-rows tr.task td.name a')].map(a => a.textContent).join(",")`)
	want := "purchases-expiration-checker,extract-todos,reschedule-todos,send-todo-daily-emails,check-disengaged-free-trial-users,first-home-chat-of-week,relaunch-locked-steps"
	if names != want {
		t.Errorf("tasks %s, want %s", names, want)
	}
	waitTrue("a next fire on every row", `[...document.querySelectorAll('#task-rows tr.task')].every(tr => {
		const t = tr.querySelector('td.next time[datetime]');
		return t && !isNaN(Date.parse(t.dateTime)) && t.textContent.startsWith('in ') && t.title.endsWith(' UTC');
	})`)
	// The stylesheet applied, and links lead to the other endpoints.
	if r := eval("the stylesheet", `getComputedStyle(document.querySelector('table.tasks')).borderTopLeftRadius`); r != "10px" {
		t.Errorf("the stylesheet did not apply (border radius %q)", r)
	}
	if l := eval("the endpoint links", `[...document.querySelectorAll('footer a')].map(a => a.getAttribute('href')).join(" ")`); !strings.Contains(l, "/metrics") || !strings.Contains(l, "/healthz") {
		t.Errorf("footer links %q", l)
	}

	// Some history for the screenshots: two overlapping triggers make a
	// skip, the others a few runs.
	for range 2 {
		apiTrigger(t, base, "send-todo-daily-emails")
		apiTrigger(t, base, "send-todo-daily-emails")
		apiTrigger(t, base, "first-home-chat-of-week")
		time.Sleep(1200 * time.Millisecond)
	}

	// Log in through the form.
	do("log in",
		chromedp.Click(chromedp.CSS("a.login")),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), e2eUIToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"]`)),
	)

	// Trigger extract-todos through its page: its manual run appears.
	do("open a task page", chromedp.Navigate(base+"/tasks/extract-todos"), chromedp.WaitVisible(chromedp.CSS(`button[value="trigger"]`)))
	before := eval("count the runs", `String(document.querySelectorAll('#runs tbody tr').length)`)
	do("trigger", chromedp.Click(chromedp.CSS(`button[value="trigger"]`)), chromedp.WaitVisible(chromedp.CSS(".flash.ok")))
	if f := eval("the notice", `document.querySelector('.flash').textContent`); !strings.Contains(f, "Run started") {
		t.Errorf("notice after the trigger: %q", f)
	}
	waitTrue("the manual run in the list", fmt.Sprintf(`(() => {
		const rows = document.querySelectorAll('#runs tbody tr');
		return rows.length > %s && rows[0].textContent.includes('manual') && rows[0].classList.contains('ok');
	})()`, before))

	// Pause it through the page: the state shows paused, here and on the
	// tasks page.
	do("pause", chromedp.Click(chromedp.CSS(`button[value="pause"]`)), chromedp.WaitVisible(chromedp.CSS("#overview .badge.paused")))
	if b := eval("the resume button", `document.querySelector('button[value="resume"]') ? "yes" : "no"`); b != "yes" {
		t.Errorf("a paused task offers no resume button")
	}
	shot("statuspage-task-1280.png")
	do("back to the tasks page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#task-rows tr.task")))
	if s := eval("the paused row", `(() => {
		const a = [...document.querySelectorAll('#task-rows td.name a')].find(a => a.textContent === 'extract-todos');
		const tr = a.closest('tr');
		return tr.classList.contains('paused') ? tr.querySelector('.badge').textContent : 'not paused';
	})()`); s != "paused" {
		t.Errorf("extract-todos on the tasks page: %q", s)
	}
	shot("statuspage-tasks-1280.png")

	// Phone width, and the dark scheme.
	do("phone width", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#task-rows tr.task")))
	if w := eval("the layout at 390 px", `String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("the tasks page is %s px wide at 390 px: it scrolls sideways", w)
	}
	shot("statuspage-tasks-390.png")
	do("phone task page", chromedp.Navigate(base+"/tasks/send-todo-daily-emails"), chromedp.WaitVisible(chromedp.ID("runs")))
	if w := eval("the task page at 390 px", `String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("the task page is %s px wide at 390 px: it scrolls sideways", w)
	}
	shot("statuspage-task-390.png")
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	do("dark scheme", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#task-rows tr.task")))
	if bg := eval("the dark background", `getComputedStyle(document.body).backgroundColor`); bg != "rgb(14, 17, 21)" {
		t.Errorf("dark scheme background %q", bg)
	}
	shot("statuspage-tasks-1280-dark.png")

	tb.checkConsole()
}

// hostileBody is a backend's error reply whose text would run script and
// load an image if the page put it into its markup.
const hostileBody = `{"error":"<script>window.pwned=1</script>\"><img src=x onerror=\"window.pwned=2\">"}`

// runsOf reads how many runs a task has recorded, through the JSON API.
func runsOf(t *testing.T, base, name string) int {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/tasks/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r controlv1.GetTaskResponse
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(b, &r); err != nil {
		t.Fatalf("GET /api/v1/tasks/%s: %v", name, err)
	}
	return len(r.GetTask().GetRuns())
}

// A backend in trouble: the email service is not configured (two tasks
// gate closed) and extract-todos fails with an error body full of markup.
// The page shows both plainly, and the markup stays text: no script runs,
// no image loads, the Content-Security-Policy reports nothing.
func TestStatusPageShowsTrouble(t *testing.T) {
	chrome := chromiumPath(t)
	stub := startStub(t)
	stub.SetEmailConfigured(false)
	base := statusServer(t, stub, "run")

	// A history for extract-todos: ok, ok, failed, ok, failed (the last
	// one with the hostile body); a few runs of two other tasks.
	for i, fail := range []bool{false, false, true, false, true} {
		if fail {
			stub.Inject("/extract_todos", mojodexstub.Fault{Status: http.StatusInternalServerError, Body: hostileBody})
		}
		apiTrigger(t, base, "extract-todos")
		waitFor(t, "the run of extract-todos", func() bool { return runsOf(t, base, "extract-todos") == i+1 })
	}
	for i := range 3 {
		apiTrigger(t, base, "relaunch-locked-steps")
		apiTrigger(t, base, "reschedule-todos")
		waitFor(t, "the runs", func() bool {
			return runsOf(t, base, "relaunch-locked-steps") == i+1 && runsOf(t, base, "reschedule-todos") == i+1
		})
	}

	tb := newTab(t, chrome)
	tb.do("open the tasks page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#task-rows tr.task")))
	gated := tb.eval("the gated rows", `[...document.querySelectorAll('#task-rows tr.task.gated.alert')].map(tr => tr.querySelector('td.name a').textContent + ':' + tr.querySelector('.badge').textContent).join(",")`)
	if gated != "send-todo-daily-emails:gate closed,check-disengaged-free-trial-users:gate closed" {
		t.Errorf("gate-closed rows: %q", gated)
	}
	errText := tb.eval("the error of extract-todos", `(() => {
		const a = [...document.querySelectorAll('#task-rows td.name a')].find(a => a.textContent === 'extract-todos');
		const err = a.closest('tr').querySelector('.err');
		return err ? err.textContent : '';
	})()`)
	if !strings.Contains(errText, "<script>window.pwned=1</script>") || !strings.Contains(errText, `<img src=x onerror=`) {
		t.Errorf("the error is not shown as text: %q", errText)
	}
	if p := tb.eval("the page's integrity", `String(window.pwned) + "," + document.images.length + "," + document.scripts.length`); p != "undefined,1,1" {
		t.Errorf("window.pwned, images, scripts = %s; want undefined,1,1", p)
	}
	tb.shot("statuspage-trouble-tasks-1280.png")

	tb.do("open the failing task", chromedp.Navigate(base+"/tasks/extract-todos"), chromedp.WaitVisible(chromedp.ID("runs")))
	outcomes := tb.eval("the runs", `[...document.querySelectorAll('#runs tbody tr')].map(tr => tr.querySelector('.outcome').textContent).join(",")`)
	if outcomes != "failed,ok,failed,ok,ok" {
		t.Errorf("runs, newest first: %s", outcomes)
	}
	if e := tb.eval("the error cell", `document.querySelector('#runs tbody tr td.errtext').textContent`); !strings.Contains(e, `"><img src=x`) {
		t.Errorf("error cell %q", e)
	}
	if p := tb.eval("the page's integrity", `String(window.pwned) + "," + document.images.length`); p != "undefined,1" {
		t.Errorf("window.pwned, images = %s", p)
	}
	tb.shot("statuspage-trouble-task-1280.png")
	tb.do("phone width", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("runs")))
	tb.shot("statuspage-trouble-task-390.png")
	tb.checkConsole()
}
