package wsconform

import (
	"strconv"
	"strings"
)

// Known is a case expected to FAIL today. A run counts it apart from
// unexpected failures, and reports it as NOW-PASSES (a problem, like a
// failure) once it passes, so that the entry goes with the fix.
type Known struct {
	Case   string // case ID
	Target Target // TargetServer, TargetClient, or 0 for both
	Reason string // what goes wrong, and where
	Fix    string // what fixes it
	// FixedIn is the first libwebsockets version known to fix it: the
	// entry applies to older versions (Options.LibVersion), and to an
	// unknown one. "": every version.
	FixedIn string
	// Since is the first libwebsockets version known to have it: the
	// entry applies to that version and later ones, not to an unknown
	// one (taken as the oldest, 4.1). "": every version.
	Since string
	// Intermittent entries fail or pass depending on how the
	// implementation's reads fall; a pass is reported, not a problem.
	Intermittent bool
}

// Why the entries below fail: libwebsockets 4.1.6 source, lib/roles/ws/
// (ops-ws.c for server links, client-parser-ws.c for client links).
const (
	whyPingDrop = "libwebsockets answers pings itself and drops a ping that arrives while an earlier ping's pong " +
		"is still pending (\"DROP PING since one pending\"; still so in v5.0.0): of pings read together only the " +
		"first is answered. libwebsockets fails Autobahn 2.10/2.11 on purpose (READMEs/README.test-apps.md, " +
		"\"Autobahn Test Notes\")"
	fixPingDrop = "none in the binding, which never sees pings; libwebsockets keeps this policy"

	whyCloseCodes = "libwebsockets answers close codes 1012-1014 with 1002: its invalid-code check predates " +
		"their IANA registration and rewrites the code to 1002 before WS_PEER_INITIATED_CLOSE reaches the " +
		"binding (servers: ops-ws.c, unchanged in v5.0.0; clients: client-parser-ws.c until 4.2.0, commit fb9abfdf0)"
	fixCloseCodes = "issue 7 item 3 (close hygiene, branch issue7), whose invalid-code list leaves 1012-1014 valid, " +
		"if the binding can act before libwebsockets rewrites the code"
)

// KnownFailures are the cases that fail with the binding as it is on
// libwebsockets 4.1.6 (what CI tests) and 4.3.5 (Debian trixie, run in the
// Dockerfile's build stage), one entry per case (and target, when only one
// fails).
var KnownFailures = []Known{
	{
		Case: "1.3.1", Target: TargetServer, FixedIn: "5.0.0",
		Reason: "a libwebsockets server before 5.0.0 does not check that client frames are masked: it unmasks " +
			"nothing and delivers the message (v5.0.0, commit cae06c63a, fails the link with 1002 \"client unmasked\")",
		Fix: "none in the binding, which only sees the payload; a libwebsockets >= 5.0.0 build. To be listed in " +
			"SECURITY.md as a remaining hole (issue 7 item 7)",
	},
	{
		Case: "1.3.2", Target: TargetClient, FixedIn: "4.3.1",
		Reason: "a libwebsockets 4.1 client accepts masked frames from the server (4.3.1 and later fail the link: " +
			"\"ws: client: fail server link if masked\", commit d080ab358, d42a7900d on v4.3-stable)",
		Fix: "none in the binding; libwebsockets >= 4.3.1 (Debian trixie's 4.3.5: make docker SUITE=trixie)",
	},
	{Case: "2.10", Reason: whyPingDrop, Fix: fixPingDrop},
	{Case: "2.11", Reason: whyPingDrop + "; pings written one byte at a time are answered or dropped depending on where reads fall",
		Fix: fixPingDrop, Intermittent: true},
	{Case: "7.7.14", Target: TargetServer, Reason: whyCloseCodes, Fix: fixCloseCodes},
	{Case: "7.7.15", Target: TargetServer, Reason: whyCloseCodes, Fix: fixCloseCodes},
	{Case: "7.7.16", Target: TargetServer, Reason: whyCloseCodes, Fix: fixCloseCodes},
	{Case: "7.7.14", Target: TargetClient, Reason: whyCloseCodes, Fix: fixCloseCodes, FixedIn: "4.2.0"},
	{Case: "7.7.15", Target: TargetClient, Reason: whyCloseCodes, Fix: fixCloseCodes, FixedIn: "4.2.0"},
	{Case: "7.7.16", Target: TargetClient, Reason: whyCloseCodes, Fix: fixCloseCodes, FixedIn: "4.2.0"},
	{
		Case: "13.22.1", Target: TargetServer,
		Reason: "an offer list of 441 bytes is answered 431: libwebsockets copies the Sec-WebSocket-Extensions " +
			"header over the 101 it is writing once the header reaches 400 bytes (lib/roles/ws/server-ws.c, " +
			"lws_extension_server_handshake and handshake_0405, unchanged in v5.0.0), and the header's length as " +
			"lws counts it cannot be changed from outside; the binding refuses with 431 naming the length",
		Fix: "none in the binding; a libwebsockets that copies the header elsewhere",
	},
}

// knownFailure returns the entry for a case on a target and libwebsockets
// version, or nil.
func knownFailure(id string, target Target, libVersion string) *Known {
	for i := range KnownFailures {
		k := &KnownFailures[i]
		if k.Case == id && (k.Target == 0 || k.Target == target) &&
			(k.FixedIn == "" || versionBefore(libVersion, k.FixedIn)) &&
			(k.Since == "" || versionParts(libVersion) != nil && !versionBefore(libVersion, k.Since)) {
			return k
		}
	}
	return nil
}

// versionBefore reports whether version v ("4.1.6-" or "4.3.5-v4.3.5")
// is older than w ("4.3.1"); an unknown v counts as older.
func versionBefore(v, w string) bool {
	a, b := versionParts(v), versionParts(w)
	if a == nil {
		return true
	}
	for i := range 3 {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// versionParts parses the leading "major.minor.patch" of v.
func versionParts(v string) []int {
	end := strings.IndexFunc(v, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if end >= 0 {
		v = v[:end]
	}
	f := strings.Split(v, ".")
	if len(f) != 3 {
		return nil
	}
	out := make([]int, 3)
	for i, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil
		}
		out[i] = n
	}
	return out
}
