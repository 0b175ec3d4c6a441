package callbacks

import (
	"bytes"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var traceRE = regexp.MustCompile(`^\[(-\d+|\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{3})\]\[DEBUG\] cb ctx:(\d+) wsi:(\d+) reason:(-?\d+) (\S+)\n$`)

// FuzzTraceLine: for any time, numbers and reason, AppendTraceLine keeps
// what was in the buffer and appends exactly one line in the reason-log
// format that reads back as what was logged; and the reason's
// classification (String, Known, FakeWSI, HasBuffer) is consistent.
func FuzzTraceLine(f *testing.F) {
	f.Add(int64(1795514747123), uint64(1), uint64(7), int32(6), []byte("prefix"))
	f.Add(int64(0), uint64(0), uint64(0), int32(-1), []byte(nil))
	f.Add(int64(-62135596800000), uint64(1<<63), ^uint64(0), int32(1<<30), []byte("x\n"))
	f.Add(int64(math.MaxInt64), uint64(2), uint64(3), int32(71), []byte(nil))
	f.Add(int64(-70000000000000), uint64(2), uint64(3), int32(71), []byte(nil))
	f.Fuzz(func(t *testing.T, ms int64, ctx, wsi uint64, reason int32, prefix []byte) {
		ts := time.UnixMilli(ms).UTC()
		r := Reason(reason)
		out := AppendTraceLine(append([]byte(nil), prefix...), ts, ctx, wsi, r)
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("prefix lost: %q", out)
		}
		line := string(out[len(prefix):])
		m := traceRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a reason-log line: %q", line)
		}
		year, _ := strconv.Atoi(m[1])
		if year != ts.Year() || m[2] != pad2(int(ts.Month())) || m[3] != pad2(ts.Day()) ||
			m[4] != pad2(ts.Hour()) || m[5] != pad2(ts.Minute()) || m[6] != pad2(ts.Second()) {
			t.Fatalf("time %v logged as %q", ts, line)
		}
		if m[7] != strconv.Itoa(1000 + ts.Nanosecond()/1e6)[1:] {
			t.Fatalf("milliseconds of %v logged as %q", ts, line)
		}
		if m[8] != strconv.FormatUint(ctx, 10) || m[9] != strconv.FormatUint(wsi, 10) ||
			m[10] != strconv.Itoa(int(reason)) || m[11] != r.String() {
			t.Fatalf("fields logged as %q", line)
		}
		switch {
		case !strings.HasPrefix(r.String(), "LWS_CALLBACK_") || r.Known() == strings.HasPrefix(r.String(), "LWS_CALLBACK_UNKNOWN("):
			t.Fatalf("%d: Known %v but String %q", reason, r.Known(), r.String())
		case r.FakeWSI() && !r.Known(), r.HasBuffer() && !r.Known():
			t.Fatalf("%d: unknown reason classified", reason)
		}
	})
}

func pad2(v int) string { return strconv.Itoa(100 + v)[1:] }
