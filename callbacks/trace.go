package callbacks

import (
	"strconv"
	"time"
)

// AppendTraceLine appends the reason-log line for one callback to b and
// returns the extended buffer. The format, shared with the native C reference
// program so that the two logs can be compared line by line, is
//
//	[2026-11-24 10:05:47.123][DEBUG] cb ctx:1 wsi:7 reason:6 LWS_CALLBACK_RECEIVE
//
// with the local time to the millisecond, a small per-process context number,
// a per-context connection number (0 for a placeholder wsi) and the reason's
// value and C name. It does not allocate when b has room.
func AppendTraceLine(b []byte, t time.Time, ctx, wsi uint64, r Reason) []byte {
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	b = append(b, '[')
	b = appendInt(b, year, 4)
	b = append(b, '-')
	b = appendInt(b, int(month), 2)
	b = append(b, '-')
	b = appendInt(b, day, 2)
	b = append(b, ' ')
	b = appendInt(b, hour, 2)
	b = append(b, ':')
	b = appendInt(b, min, 2)
	b = append(b, ':')
	b = appendInt(b, sec, 2)
	b = append(b, '.')
	b = appendInt(b, t.Nanosecond()/1e6, 3)
	b = append(b, "][DEBUG] cb ctx:"...)
	b = strconv.AppendUint(b, ctx, 10)
	b = append(b, " wsi:"...)
	b = strconv.AppendUint(b, wsi, 10)
	b = append(b, " reason:"...)
	b = strconv.AppendInt(b, int64(r), 10)
	b = append(b, ' ')
	if s, ok := reasonNames[r]; ok {
		b = append(b, s...)
	} else {
		b = append(b, r.String()...)
	}
	return append(b, '\n')
}

// appendInt appends v zero-padded to width digits. Values beyond what the
// clock gives (a negative year, one past 99999999) are written plainly.
func appendInt(b []byte, v, width int) []byte {
	if v < 0 || v > 99999999 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	var tmp [8]byte
	i := len(tmp)
	for v > 0 || i > len(tmp)-width {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}
