package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// table writes aligned columns for people: a header, then rows.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row writes one row; an empty cell shows as "-".
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		if c == "" {
			c = "-"
		}
		io.WriteString(t.tw, c)
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() { _ = t.tw.Flush() }

// humanBytes is n in B, KiB, MiB or GiB: "512 B", "1.5 KiB", "12 MiB".
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

// humanAge is d in its two largest units: "42s", "3m07s", "2h05m", "4d03h".
func humanAge(d time.Duration) string {
	d = max(d, 0)
	switch s := int64(d / time.Second); {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
	}
}

// closeText is a close code and its reason: `4001 "kicked"`, `1006`.
func closeText(code int, reason string) string {
	if reason == "" {
		return fmt.Sprint(code)
	}
	return fmt.Sprintf("%d %q", code, reason)
}
