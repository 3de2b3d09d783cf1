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

// Run checks the environment and the task set and prints each task with its
// next three fire times. Every problem found is reported, not only the first.
func (v *validateCmd) Run(a *appEnv) error {
	cfg, specs, err := a.load(v.Tasks)
	if err != nil {
		return err
	}
	if err := cfg.CheckURIs(needsSecret(specs)); err != nil {
		return errors.Join(errors.New("configuration is not valid"), err)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSCHEDULE\tCALL\tGATE\tNEXT FIRES")
	for _, s := range specs {
		sched, err := s.Schedule(now)
		if err != nil {
			return err
		}
		var fires []string
		for _, t := range schedule.Upcoming(sched, now, 3) {
			fires = append(fires, t.Format(time.RFC3339))
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
