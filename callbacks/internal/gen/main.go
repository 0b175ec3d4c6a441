// Command gen writes callbacks/reason_gen.go and cgo/reasons_gen.go from one
// or more copies of libwebsockets' lws-callbacks.h.
//
// Usage (from the module root):
//
//	go run ./callbacks/internal/gen VERSION=PATH [VERSION=PATH ...]
//
// for example
//
//	go run ./callbacks/internal/gen \
//	    4.1.6=/usr/include/libwebsockets/lws-callbacks.h \
//	    4.3.5=/tmp/lws-4.3.5/lws-callbacks.h
//
// Every LWS_CALLBACK_* enumerator of every header becomes a callbacks.Reason
// constant whose String method returns the C name. The headers number every
// reason explicitly and lws never renumbers one (the enum is declared part of
// the ABI), so a value seen in any version means the same thing in all of
// them; the generator fails if two headers disagree. A name that is missing
// from some of the given versions is recorded with the range it exists in,
// and the C cross-check table in cgo/ guards it with
// LWS_LIBRARY_VERSION_NUMBER, bounded by the versions seen to carry it, so the
// package compiles against each of them (a release between two given versions
// is conservatively left out of the check, never wrongly put in).
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var enumerator = regexp.MustCompile(`(?m)^\s*LWS_CALLBACK_([A-Z0-9_]+)\s*=\s*([0-9]+)\s*,`)

type version struct {
	label string
	num   int // major*1000000 + minor*1000 + patch, as LWS_LIBRARY_VERSION_NUMBER
}

type reason struct {
	cname  string
	value  int
	inVers []version
}

func parseVersion(s string) (version, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return version{}, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH", s)
	}
	n := 0
	for _, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil {
			return version{}, fmt.Errorf("version %q: %v", s, err)
		}
		n = n*1000 + v
	}
	return version{label: s, num: n}, nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: gen VERSION=PATH [VERSION=PATH ...]")
	}
	byName := map[string]*reason{}
	var versions []version
	for _, a := range args {
		label, path, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("argument %q: want VERSION=PATH", a)
		}
		v, err := parseVersion(label)
		if err != nil {
			return err
		}
		versions = append(versions, v)
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ms := enumerator.FindAllSubmatch(src, -1)
		if len(ms) == 0 {
			return fmt.Errorf("%s: no LWS_CALLBACK_* enumerators found", path)
		}
		for _, m := range ms {
			name := "LWS_CALLBACK_" + string(m[1])
			val, _ := strconv.Atoi(string(m[2]))
			r := byName[name]
			if r == nil {
				r = &reason{cname: name, value: val}
				byName[name] = r
			} else if r.value != val {
				return fmt.Errorf("%s is %d in one header and %d in %s", name, r.value, val, path)
			}
			r.inVers = append(r.inVers, v)
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].num < versions[j].num })
	var all []*reason
	seen := map[int]string{}
	for _, r := range byName {
		if other, dup := seen[r.value]; dup {
			return fmt.Errorf("value %d is used by both %s and %s", r.value, other, r.cname)
		}
		seen[r.value] = r.cname
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].value < all[j].value })

	goSrc, err := format.Source(genGo(all, versions))
	if err != nil {
		return fmt.Errorf("format callbacks: %v", err)
	}
	if err := os.WriteFile("callbacks/reason_gen.go", goSrc, 0o644); err != nil {
		return err
	}
	cSrc, err := format.Source(genC(all, versions))
	if err != nil {
		return fmt.Errorf("format cgo: %v", err)
	}
	return os.WriteFile("cgo/reasons_gen.go", cSrc, 0o644)
}

// goName turns LWS_CALLBACK_CLIENT_HTTP_WRITEABLE into ClientHTTPWriteable.
func goName(cname string) string {
	initialisms := map[string]string{
		"HTTP": "HTTP", "WSI": "WSI", "SSL": "SSL", "OPENSSL": "OpenSSL", "MQTT": "MQTT",
		"CGI": "CGI", "PMO": "PMO", "RX": "RX", "TX": "TX", "ID": "ID", "FD": "FD",
		"WS": "WS", "GS": "GS", "CLI": "Cli", "SRV": "Srv", "QOS2": "QoS2", "DHT": "DHT",
		"QT": "QT", "PSS": "PSS", "STDIN": "Stdin", "HTML": "HTML", "RAW": "Raw", "SKT": "Skt",
	}
	var b strings.Builder
	for _, w := range strings.Split(strings.TrimPrefix(cname, "LWS_CALLBACK_"), "_") {
		if s, ok := initialisms[w]; ok {
			b.WriteString(s)
			continue
		}
		b.WriteString(w[:1])
		b.WriteString(strings.ToLower(w[1:]))
	}
	return b.String()
}

// span says which of the given versions carry r: "" when all do.
func span(r *reason, versions []version) (first, last version, partial bool) {
	first, last = r.inVers[0], r.inVers[0]
	for _, v := range r.inVers {
		if v.num < first.num {
			first = v
		}
		if v.num > last.num {
			last = v
		}
	}
	return first, last, len(r.inVers) != len(versions)
}

func versionNote(r *reason, versions []version) string {
	first, last, partial := span(r, versions)
	if !partial {
		return ""
	}
	switch {
	case first.num == versions[0].num:
		return fmt.Sprintf(" Present up to libwebsockets %s; removed after.", last.label)
	case last.num == versions[len(versions)-1].num:
		return fmt.Sprintf(" Added after libwebsockets %s; present from %s.", prevLabel(first, versions), first.label)
	default:
		return fmt.Sprintf(" Present in libwebsockets %s to %s only.", first.label, last.label)
	}
}

func prevLabel(v version, versions []version) string {
	p := versions[0]
	for _, w := range versions {
		if w.num < v.num {
			p = w
		}
	}
	return p.label
}

func labels(versions []version) string {
	var s []string
	for _, v := range versions {
		s = append(s, v.label)
	}
	return strings.Join(s, ", ")
}

func genGo(all []*reason, versions []version) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by callbacks/internal/gen from lws-callbacks.h of libwebsockets %s; DO NOT EDIT.\n\n", labels(versions))
	b.WriteString("package callbacks\n\n")
	b.WriteString("// The callback reasons of libwebsockets, with the values lws-callbacks.h gives them.\n")
	b.WriteString("// Each constant's comment names its C enumerator.\nconst (\n")
	for _, r := range all {
		fmt.Fprintf(&b, "\t// %s is %s (%d).%s\n", goName(r.cname), r.cname, r.value, versionNote(r, versions))
		fmt.Fprintf(&b, "\t%s Reason = %d\n", goName(r.cname), r.value)
	}
	b.WriteString(")\n\n")
	b.WriteString("// reasonNames maps each known reason to its C enumerator name.\n")
	b.WriteString("var reasonNames = map[Reason]string{\n")
	for _, r := range all {
		fmt.Fprintf(&b, "\t%s: %q,\n", goName(r.cname), r.cname)
	}
	b.WriteString("}\n\n")
	b.WriteString("// allReasons lists every known reason in ascending order.\n")
	b.WriteString("var allReasons = [...]Reason{\n")
	for _, r := range all {
		fmt.Fprintf(&b, "\t%s,\n", goName(r.cname))
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func genC(all []*reason, versions []version) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by callbacks/internal/gen from lws-callbacks.h of libwebsockets %s; DO NOT EDIT.\n\n", labels(versions))
	b.WriteString("package cgo\n\n")
	b.WriteString("/*\n#include <libwebsockets.h>\n\n")
	b.WriteString("// lwsgo_reason_table lists every LWS_CALLBACK_* enumerator the linked\n")
	b.WriteString("// headers define, by name and by the value the compiler gives it.\n")
	b.WriteString("static const struct lwsgo_reason_entry { const char *name; int value; } lwsgo_reason_table[] = {\n")
	for _, r := range all {
		first, last, partial := span(r, versions)
		var cond string
		if partial {
			var parts []string
			if first.num != versions[0].num {
				parts = append(parts, fmt.Sprintf("LWS_LIBRARY_VERSION_NUMBER >= %d", first.num))
			}
			if last.num != versions[len(versions)-1].num {
				parts = append(parts, fmt.Sprintf("LWS_LIBRARY_VERSION_NUMBER <= %d", last.num))
			}
			cond = strings.Join(parts, " && ")
		}
		if cond != "" {
			fmt.Fprintf(&b, "#if %s\n", cond)
		}
		fmt.Fprintf(&b, "\t{ %q, %s },\n", r.cname, r.cname)
		if cond != "" {
			b.WriteString("#endif\n")
		}
	}
	b.WriteString("\t{ 0, 0 }\n};\n\n")
	b.WriteString("// cgo cannot take the address of a static array; these read it.\n")
	b.WriteString("static const char *lwsgo_reason_name(int i) { return lwsgo_reason_table[i].name; }\n")
	b.WriteString("static int lwsgo_reason_value(int i) { return lwsgo_reason_table[i].value; }\n")
	b.WriteString("*/\nimport \"C\"\n\n")
	b.WriteString("// reasonTable returns every LWS_CALLBACK_* enumerator of the headers this\n")
	b.WriteString("// package was compiled against, with its C value. Tests use it (through\n")
	b.WriteString("// export_test.go) to check the constants of package callbacks against the\n")
	b.WriteString("// real headers.\n")
	b.WriteString("func reasonTable() map[string]int {\n")
	b.WriteString("\tm := map[string]int{}\n")
	b.WriteString("\tfor i := C.int(0); C.lwsgo_reason_name(i) != nil; i++ {\n")
	b.WriteString("\t\tm[C.GoString(C.lwsgo_reason_name(i))] = int(C.lwsgo_reason_value(i))\n")
	b.WriteString("\t}\n\treturn m\n}\n")
	return b.Bytes()
}
