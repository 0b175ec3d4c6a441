package main

import (
	"fmt"
	"slices"
	"strings"
)

// Issue 15's targets, judged on the medians of one run: server CPU per
// operation against native lws (the steadier figure on a shared machine).
const (
	gateMsgMax  = 1.05 // lwsgate: messages and connect
	gateHTTPMax = 1.15 // lwsgate: HTTP
	pkgMsgMax   = 1.00 // package lws alone: messages and connect
	pkgHTTPMax  = 1.05 // package lws alone: HTTP
	idleBytes   = 6500 // bytes per idle link (issue 6)
	flatMax     = 1.10 // CPU per message with N idle links open over none
)

// reportTargets writes the targets section: each scenario's CPU ratios
// for lwsgate and package lws against their targets, whether lwsgate is
// ahead of gorilla and gws in rate and CPU, the idle links' memory and
// CPU per accepted link, and whether CPU per message stays flat as idle
// links grow.
func reportTargets(p func(string, ...any), srvs []server, scens []scenario, samples []sample) {
	has := func(n string) bool { return slices.ContainsFunc(srvs, func(s server) bool { return s.name == n }) }
	get := func(srv, scen string) []sample { return samplesOf(samples, srv, scen) }
	rate := func(s sample) float64 { return s.Rate }
	cpu := func(s sample) float64 { return s.CPUusPerOp }
	bpl := func(s sample) float64 { return s.BytesPerLink }
	// atMost marks v/base against a ceiling; "–" when either is missing.
	atMost := func(v, base, ceiling float64) string {
		if v == 0 || base == 0 {
			return "–"
		}
		r := v / base
		if r <= ceiling {
			return fmt.Sprintf("%.2f× ✓", r)
		}
		return fmt.Sprintf("%.2f× ✗", r)
	}
	// ahead: lwsgate's median beats every peer's (higher or lower is better).
	ahead := func(scen string, f func(sample) float64, higher bool) string {
		gw := medOf(get("lwsgate", scen), f)
		n := 0
		for _, peer := range []string{"gorilla", "gws"} {
			if !has(peer) {
				continue
			}
			n++
			v := medOf(get(peer, scen), f)
			if gw == 0 || v == 0 || higher && gw <= v || !higher && gw >= v {
				return "✗"
			}
		}
		if n == 0 {
			return "–"
		}
		return "✓"
	}

	p("\n## Issue 15 targets\n\n")
	p("From the medians above, server CPU per operation over native lws' (lower is better): lwsgate at most %.2f× for messages and connect and %.2f× for HTTP; package lws alone (`lws-pkg`) at most %.2f× and %.2f×; lwsgate ahead of both gorilla and gws in rate and in CPU; at most %d bytes and no more CPU than native lws per idle link.\n\n",
		gateMsgMax, gateHTTPMax, pkgMsgMax, pkgHTTPMax, idleBytes)
	p("| scenario | lwsgate CPU ÷ lws | lws-pkg CPU ÷ lws | lwsgate ahead of gorilla and gws: rate, CPU |\n|---|---|---|---|\n")
	for _, sc := range scens {
		lc := medOf(get("lws", sc.name), cpu)
		gc, pc := medOf(get("lwsgate", sc.name), cpu), medOf(get("lws-pkg", sc.name), cpu)
		if sc.unit == "" {
			gb := medOf(get("lwsgate", sc.name), bpl)
			m := "✗"
			if gb > 0 && gb <= idleBytes {
				m = "✓"
			}
			p("| %s: bytes per link | %.0f %s (lws: %.0f) | %.0f | %s |\n", sc.title, gb, m, medOf(get("lws", sc.name), bpl),
				medOf(get("lws-pkg", sc.name), bpl), ahead(sc.name, bpl, false))
			p("| … CPU per accepted link | %s | %s | %s |\n", atMost(gc, lc, 1.0), atMost(pc, lc, 1.0), ahead(sc.name, cpu, false))
			continue
		}
		gmax, pmax := gateMsgMax, pkgMsgMax
		if sc.name == "http" {
			gmax, pmax = gateHTTPMax, pkgHTTPMax
		}
		p("| %s | %s | %s | %s, %s |\n", sc.title, atMost(gc, lc, gmax), atMost(pc, lc, pmax),
			ahead(sc.name, rate, true), ahead(sc.name, cpu, false))
	}

	// As links grow: each +idleN scenario's CPU per message over its
	// base scenario's, per server.
	var grown []scenario
	for _, sc := range scens {
		if sc.idle > 0 {
			grown = append(grown, sc)
		}
	}
	if len(grown) == 0 {
		return
	}
	p("\nCPU per message with idle links open over the same load without them (target: lwsgate within %.0f%%, at most %.2f×):\n\n", (flatMax-1)*100, flatMax)
	p("| scenario |")
	for _, s := range srvs {
		p(" %s |", s.name)
	}
	p("\n|---|%s\n", strings.Repeat("---|", len(srvs)))
	for _, sc := range grown {
		base, _, _ := strings.Cut(sc.name, "+")
		p("| %s |", sc.title)
		for _, s := range srvs {
			v, b := medOf(get(s.name, sc.name), cpu), medOf(get(s.name, base), cpu)
			switch {
			case v == 0 || b == 0:
				p(" – |")
			case s.name == "lwsgate" && v/b <= flatMax:
				p(" %.2f× ✓ |", v/b)
			case s.name == "lwsgate":
				p(" %.2f× ✗ |", v/b)
			default:
				p(" %.2f× |", v/b)
			}
		}
		p("\n")
	}
}
