package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mojodex/mojodex-scheduler/schedule"
)

type validateCmd struct {
	taskFlag
}

// Run is the pre-flight check of `run`: the environment (every setting,
// the service URIs, the secret), the remote endpoint's policy and TLS
// files, and the task set — everything run checks before it listens — then
// prints the configuration in effect and each task with its next three
// fire times (jitter included). Every problem found is reported, not only
// the first.
func (v *validateCmd) Run(a *appEnv) error {
	cfg, specs, err := a.load(v.Tasks)
	for _, w := range a.warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	var problems []error
	if err := cfg.CheckURIs(needsSecret(specs)); err != nil {
		problems = append(problems, err)
	}
	if _, err := planRemote(cfg); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return errors.Join(append([]error{errors.New("configuration is not valid")}, problems...)...)
	}
	fmt.Fprint(a.stdout, cfg.Summary())
	fmt.Fprintln(a.stdout)
	now := time.Now()
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSCHEDULE\tCALL\tGATE\tNEXT FIRES")
	for _, s := range specs {
		sched, err := s.Schedule(now)
		if err != nil {
			return err
		}
		jitter := s.JitterDelay()
		var fires []string
		for _, t := range schedule.Upcoming(sched, now.Add(-jitter), 3) {
			fires = append(fires, t.Add(jitter).Local().Format(timeLayout))
		}
		call := "job"
		if r := s.Request; r != nil {
			call = fmt.Sprintf("%s %s %s", r.Service, r.Method, r.Path)
			if p := s.Paginate; p != nil {
				call += fmt.Sprintf(" (%s pages of %d, max %d)", p.Mode, p.Size, p.MaxPages)
			}
		}
		gate := "-"
		if s.EnabledIf != "" {
			gate = string(s.EnabledIf)
		}
		desc := sched.String()
		if jitter > 0 {
			desc += fmt.Sprintf(" +%s jitter", jitter.Round(time.Second))
		}
		if s.RunOnStart {
			desc += ", and at start"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, desc, call, gate, strings.Join(fires, ", "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print: %w", err)
	}
	fmt.Fprintf(a.stdout, "configuration is valid: %d tasks\n", len(specs))
	return nil
}
