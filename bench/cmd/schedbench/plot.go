package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"github.com/mojodex/mojodex-scheduler/bench/harness"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// schedulerStyle gives each scheduler a colour (colour-blind safe) and dash.
var schedulerStyle = map[string]struct {
	c      color.RGBA
	dashes []vg.Length
}{
	"ours":      {color.RGBA{0, 114, 178, 255}, nil},
	"ours/bolt": {color.RGBA{204, 121, 167, 255}, []vg.Length{vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}},
	"robfig":    {color.RGBA{213, 94, 0, 255}, []vg.Length{vg.Points(6), vg.Points(3)}},
	"gocron":    {color.RGBA{0, 158, 115, 255}, []vg.Length{vg.Points(2), vg.Points(2)}},
}

// ccdfTicks labels the fraction axis with the quantiles it stands for.
type ccdfTicks struct{}

// Ticks implements plot.Ticker.
func (ccdfTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := 0; e >= -7; e-- {
		v := math.Pow(10, float64(e))
		if v < lo*0.999 || v > hi*1.001 {
			continue
		}
		label := strconv.FormatFloat(v, 'g', -1, 64)
		switch e {
		case -2:
			label += " (p99)"
		case -3:
			label += " (p99.9)"
		}
		ts = append(ts, plot.Tick{Value: v, Label: label})
	}
	if lo <= 0.5 && hi >= 0.5 {
		ts = append(ts, plot.Tick{Value: 0.5, Label: "0.5 (p50)"})
	}
	return ts
}

// ccdf turns a histogram into the points (lateness in ms, fraction of fires
// later than that), one per non-empty bucket, at the bucket's upper edge.
func ccdf(hist []harness.Bucket, maxLate float64) plotter.XYs {
	var total uint64
	for _, b := range hist {
		total += b.Count
	}
	var pts plotter.XYs
	var cum uint64
	for _, b := range hist {
		cum += b.Count
		x := float64(harness.UpperEdge(b.Index)) / 1e6
		if b.Index == harness.Buckets() || x > maxLate {
			x = maxLate
		}
		y := float64(total-cum) / float64(total)
		if y <= 0 {
			// The last point: on a log axis it is drawn at the last fire's
			// fraction (1/total) so the tail reaches the maximum.
			y = 1 / float64(total)
		}
		pts = append(pts, plotter.XY{X: max(x, 0.01), Y: y})
	}
	return pts
}

// plotLateness draws, for scenarios 1 and 2 (and 3 when it ran), the
// complementary CDF of the lateness of every delivered fire for each
// scheduler, on log-log axes, into a PNG.
func plotLateness(path string, rs []harness.Result, hists map[string]string) error {
	var row []*plot.Plot
	for _, s := range []int{1, 2, 3} {
		p := plot.New()
		drawn := 0
		lowest := 1.0
		var title string
		for _, c := range []runSpec{
			{scenario: s, scheduler: "ours", store: "memory"}, {scenario: s, scheduler: "ours", store: "bolt"},
			{scenario: s, scheduler: "robfig"}, {scenario: s, scheduler: "gocron"},
		} {
			r := findStore(rs, s, c.scheduler, "", c.store)
			if r == nil {
				continue
			}
			title = fmt.Sprintf("Scenario %d: %s tasks every %s, %s", s, thousands(r.N), dur(r.Period), dur(r.Duration))
			b, err := os.ReadFile(hists[c.key()])
			if err != nil {
				return err
			}
			var hist []harness.Bucket
			if err := json.Unmarshal(b, &hist); err != nil {
				return err
			}
			if len(hist) == 0 {
				continue
			}
			pts := ccdf(hist, float64(r.Max)/1e6)
			for _, pt := range pts {
				lowest = min(lowest, pt.Y)
			}
			line, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			name := c.name()
			st := schedulerStyle[name]
			line.Color, line.Dashes, line.Width = st.c, st.dashes, vg.Points(2)
			line.StepStyle = plotter.PostStep
			p.Add(line)
			p.Legend.Add(fmt.Sprintf("%s (p99 %s)", name, ms(r.P99)), line)
			drawn++
		}
		if drawn == 0 {
			continue
		}
		// The p99 target: robfig's p99 in the same run for scenarios 1
		// and 2, a fixed bound for scenario 3.
		goal, label := targetS3P99, "p99 target"
		if r := find(rs, s, "robfig", ""); s != 3 && r != nil {
			goal, label = r.P99, "p99 target (robfig's)"
		}
		x := float64(goal) / 1e6
		target, err := plotter.NewLine(plotter.XYs{{X: x, Y: lowest}, {X: x, Y: 1}})
		if err != nil {
			return err
		}
		target.Color, target.Width = color.Gray{Y: 110}, vg.Points(1)
		target.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		p.Add(target)
		p.Legend.Add(fmt.Sprintf("%s, %s", label, ms(goal)), target)
		p.Title.Text = title
		p.X.Label.Text = "lateness against the due time (ms, log scale)"
		p.Y.Label.Text = "fraction of fires later than that"
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Tick.Marker = ccdfTicks{}
		p.Legend.Top = true
		p.Legend.Left = false
		p.Add(plotter.NewGrid())
		row = append(row, p)
	}
	if len(row) == 0 {
		return fmt.Errorf("no lateness histogram to plot")
	}
	// Two panels a row, so that the text stays readable.
	cols := min(len(row), 2)
	rows := (len(row) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range row {
		grid[i/cols][i%cols] = p
	}
	w, h := vg.Length(cols)*6.5*vg.Inch, vg.Length(rows)*5*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Inch / 2, PadY: vg.Inch / 3, PadTop: vg.Inch / 8,
		PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 4}
	canvases := plot.Align(grid, tiles, dc)
	for j := range grid {
		for i, p := range grid[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// thousands formats n with comma separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
