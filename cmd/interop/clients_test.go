package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lwsgate/lwsgate/internal/testutil"
)

// allClients lists the clients of the matrix; one that cannot run here
// says why in missing.
func allClients(t *testing.T, dir string, cert *testutil.Cert) []client {
	return []client{
		chromiumClient(t, dir, cert),
		nodeClient(),
		pythonClient(),
		gorillaClient(cert.Pool),
		coderClient(cert.Pool),
	}
}

// nodeClient is the ws package from npm, the version clients/package.json
// pins, installed by scripts/test-deps.sh into clients/node_modules.
func nodeClient() client {
	cl := client{name: "node-ws", canFrag: true, canPing: true, canNoPMD: true}
	var pkg struct {
		Version string `json:"version"`
	}
	b, err := os.ReadFile("clients/node_modules/ws/package.json")
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	switch _, nerr := exec.LookPath("node"); {
	case nerr != nil:
		cl.missing = "node is not installed"
	case err != nil:
		cl.missing = "the ws package is not installed in clients/node_modules (npm ci in cmd/interop/clients)"
	}
	cl.version = pkg.Version
	cl.run = script("node", "clients/ws_client.mjs")
	return cl
}

// pythonClient is Debian's python3-websockets, run by Debian's python3
// (another python3 first in PATH may not have it).
func pythonClient() client {
	cl := client{name: "python-websockets", canFrag: true, canPing: true, canNoPMD: true}
	const python = "/usr/bin/python3"
	out, err := exec.Command(python, "-c", "import websockets; print(websockets.__version__)").Output()
	if err != nil {
		cl.missing = "python3-websockets is not installed (" + python + " cannot import websockets)"
	}
	cl.version = strings.TrimSpace(string(out))
	cl.run = script(python, "clients/websockets_client.py")
	return cl
}

// script runs a client script with the session as its argument and turns
// each line it prints into an event; it fails if the script fails.
func script(interp, file string) func(ctx context.Context, c *caseJSON, events chan<- event) error {
	return func(ctx context.Context, c *caseJSON, events chan<- event) error {
		arg, err := json.Marshal(c)
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(file)
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, interp, abs, string(arg))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var bad error
		for sc.Scan() {
			var ev event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				bad = fmt.Errorf("not an event: %q", sc.Text())
				continue
			}
			if bad == nil && emit(ctx, events, ev) != nil {
				break
			}
		}
		err = cmd.Wait()
		if bad != nil {
			return bad
		}
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", interp, file, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
}

// moduleVersion is the version of a Go module this test requires, from
// go.mod (a test binary's build information lists no dependencies).
func moduleVersion(path string) string {
	b, err := os.ReadFile("go.mod")
	if err != nil {
		return "?"
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(path) + ` (v\S+)`).FindSubmatch(b)
	if m == nil {
		return "?"
	}
	return string(m[1])
}
