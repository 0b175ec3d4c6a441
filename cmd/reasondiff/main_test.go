package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	line := func(wsi, reason int, name string) string {
		return "[2026-11-24 10:05:47.001][DEBUG] cb ctx:1 wsi:" + itoa(wsi) + " reason:" + itoa(reason) + " LWS_CALLBACK_" + name + "\n"
	}
	a := write("a.log", line(1, 29, "WSI_CREATE")+line(0, 71, "EVENT_WAIT_CANCELLED")+line(1, 30, "WSI_DESTROY"))
	b := write("b.log", line(4, 29, "WSI_CREATE")+line(4, 30, "WSI_DESTROY"))
	c := write("c.log", line(4, 29, "WSI_CREATE"))
	empty := write("empty.log", "nothing here\n")

	var out, errb strings.Builder
	require.Equal(t, 0, run([]string{a, b}, &out, &errb), out.String())
	require.Contains(t, out.String(), "same")
	out.Reset()
	require.Equal(t, 1, run([]string{"-diffs", a, c}, &out, &errb))
	require.Contains(t, out.String(), "30 WSI_DESTROY")
	require.Contains(t, out.String(), "1 differences")
	require.Equal(t, 2, run([]string{a}, &out, &errb))
	require.Equal(t, 2, run([]string{a, filepath.Join(dir, "missing.log")}, &out, &errb))
	errb.Reset()
	require.Equal(t, 2, run([]string{a, empty}, &out, &errb))
	require.Contains(t, errb.String(), "no reason-log lines")
}

func itoa(n int) string { return strconv.Itoa(n) }
