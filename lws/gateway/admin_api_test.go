package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawAPI calls the admin API and returns the response with its body read.
func (g *testGW) rawAPI(t testing.TB, method, path, token, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.admin+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestAdminMethodNotAllowed: a path the admin API serves, asked with a
// method it does not serve there, answers 405 with Allow (RFC 9110,
// 15.5.6), not 404 as if the path did not exist.
func TestAdminMethodNotAllowed(t *testing.T) {
	g := startGW(t, "", nil)
	resp, body := g.rawAPI(t, "PUT", "/v1/api/links/7", "", "")
	assert.Equal(t, 405, resp.StatusCode, body)
	assert.Equal(t, "GET, DELETE", resp.Header.Get("Allow"))
	assert.JSONEq(t, `{"code":405,"error":"PUT /v1/api/links/7: method not allowed (allowed: GET, DELETE)"}`, body)
	resp, _ = g.rawAPI(t, "GET", "/v1/api/publish", "", "")
	assert.Equal(t, 405, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))
	resp, body = g.rawAPI(t, "GET", "/v1/api/nothing", "", "")
	assert.Equal(t, 404, resp.StatusCode, body)
	assert.Empty(t, resp.Header.Get("Allow"))
}

// TestAdminChallenge: a request without the admin token gets 401 with
// WWW-Authenticate naming the Bearer scheme (RFC 9110, 11.6.1: a 401
// must carry it); with the token, none.
func TestAdminChallenge(t *testing.T) {
	g := startGW(t, "admin:\n  addr: 127.0.0.1:0\n  token: s3cret\n", nil)
	for _, tok := range []string{"", "wrong"} {
		resp, body := g.rawAPI(t, "GET", "/v1/api/links", tok, "")
		assert.Equal(t, 401, resp.StatusCode, body)
		assert.Equal(t, `Bearer realm="lwsgate admin"`, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ := g.rawAPI(t, "GET", "/v1/api/links", "s3cret", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
}
