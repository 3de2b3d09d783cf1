package schedule_test

import (
	"fmt"
	"time"

	"github.com/mojodex/mojodex-scheduler/schedule"
)

func ExampleResolve() {
	paris, _ := time.LoadLocation("Europe/Paris")
	// 02:30 does not exist on 29 March 2026: it fires when the clocks reach 03:00 CEST.
	fmt.Println(schedule.Resolve(2026, time.March, 29, 2, 30, 0, paris))
	// 02:30 happens twice on 25 October 2026: it fires on the first occurrence.
	fmt.Println(schedule.Resolve(2026, time.October, 25, 2, 30, 0, paris))
	// Output:
	// 2026-03-29 03:00:00 +0200 CEST
	// 2026-10-25 02:30:00 +0200 CEST
}

func ExampleCron() {
	paris, _ := time.LoadLocation("Europe/Paris")
	s, err := schedule.Cron("*/20 * * * *", paris)
	if err != nil {
		panic(err)
	}
	fmt.Println(s)
	from := time.Date(2026, time.March, 29, 1, 30, 0, 0, paris)
	for _, t := range schedule.Upcoming(s, from, 4) {
		fmt.Println(t)
	}
	// Output:
	// cron "*/20 * * * *" (Europe/Paris)
	// 2026-03-29 01:40:00 +0100 CET
	// 2026-03-29 03:00:00 +0200 CEST
	// 2026-03-29 03:20:00 +0200 CEST
	// 2026-03-29 03:40:00 +0200 CEST
}

func ExampleDaily() {
	ny, _ := time.LoadLocation("America/New_York")
	s, err := schedule.Daily(schedule.TimeOfDay{Hour: 1, Minute: 30}, nil, ny)
	if err != nil {
		panic(err)
	}
	fmt.Println(s)
	for _, t := range schedule.Upcoming(s, time.Date(2026, time.October, 31, 12, 0, 0, 0, ny), 2) {
		fmt.Println(t)
	}
	// Output:
	// daily at 01:30:00 (America/New_York)
	// 2026-11-01 01:30:00 -0400 EDT
	// 2026-11-02 01:30:00 -0500 EST
}

func ExampleEvery() {
	anchor := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	s, err := schedule.Every(90*time.Minute, anchor)
	if err != nil {
		panic(err)
	}
	fmt.Println(s)
	fmt.Println(s.Next(anchor.Add(-time.Nanosecond)))
	fmt.Println(s.Next(anchor.Add(100 * time.Hour)))
	// Output:
	// every 1h30m0s
	// 2026-01-01 00:00:00 +0000 UTC
	// 2026-01-05 04:30:00 +0000 UTC
}
