package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// jwksSet is an identity provider's key set (auth.jwks_url), fetched
// through the gateway's own HTTP client (lws client links) and kept by
// kid. A token naming a kid it lacks has it fetched again, at most once
// every min interval; a set older than refresh is fetched again in the
// background when a token uses it. A failed fetch, or one whose document
// holds no usable key, keeps the keys known: a provider that is down
// locks no one out. A fetch that succeeds replaces the keys, so that keys
// the provider withdrew stop verifying.
//
// Lookups run on the service goroutine and never wait for a fetch: a kid
// that a fetch under way may bring is answered errKeysPending (the
// upgrade gets 503 with Retry-After), one a fetch just done did not bring
// errUnknownKey (401).
//
// Concurrency: safe from any goroutine; mu guards the fields after it.
type jwksSet struct {
	g   *Gateway
	url string
	tls *lws.ClientTLS

	mu          sync.Mutex
	keys        *keySet
	minInterval time.Duration
	refresh     time.Duration
	tried       time.Time     // when the last fetch started
	fetched     bool          // a fetch has succeeded
	inflight    chan struct{} // closed when the fetch under way ends; nil: none
	now         func() time.Time
}

// jwksKey identifies a key set in the gateway's registry: listeners with
// the same URL and CA share one.
type jwksKey struct{ url, ca string }

// jwksFor returns the registry's set for a listener's auth, made (and
// its first fetch started) if new; its intervals are the config's. The
// sets no listener uses after a Reload are dropped by it (sweepJWKS).
func (g *Gateway) jwksFor(a *AuthConfig) *jwksSet {
	k := jwksKey{a.JWKSURL, a.JWKSCA}
	g.jwksMu.Lock()
	defer g.jwksMu.Unlock()
	s := g.jwks[k]
	if s == nil {
		s = &jwksSet{g: g, url: a.JWKSURL, now: time.Now}
		if a.JWKSCA != "" {
			s.tls = &lws.ClientTLS{CAFile: a.JWKSCA}
		}
		g.jwks[k] = s
	}
	s.mu.Lock()
	s.minInterval, s.refresh = a.JWKSMinInterval.D(), a.JWKSRefresh.D()
	if !s.fetched && s.inflight == nil {
		s.startFetch(s.now())
	}
	s.mu.Unlock()
	return s
}

// sweepJWKS drops the sets no listener of cfg uses.
func (g *Gateway) sweepJWKS(cfg *Config) {
	used := map[jwksKey]bool{}
	for _, l := range cfg.Listeners {
		if l.Auth.JWKSURL != "" {
			used[jwksKey{l.Auth.JWKSURL, l.Auth.JWKSCA}] = true
		}
	}
	g.jwksMu.Lock()
	for k := range g.jwks {
		if !used[k] {
			delete(g.jwks, k)
		}
	}
	g.jwksMu.Unlock()
}

// key returns the key kid names: errKeysPending while a fetch that may
// bring it is under way (or was started by this call), errKeysNotKnown
// when no fetch has succeeded yet and none may start now, errUnusableKey
// for a kid of a key the gateway cannot use, errUnknownKey otherwise.
func (s *jwksSet) key(kid string) (*verifyKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var k *verifyKey
	if s.keys != nil {
		k = s.keys.keys[kid]
	}
	idle := s.inflight == nil
	switch {
	case k != nil:
		if idle && now.Sub(s.tried) >= s.refresh {
			s.startFetch(now)
		}
		return k, nil
	case !idle:
		return nil, errKeysPending
	case now.Sub(s.tried) >= s.minInterval:
		s.startFetch(now)
		return nil, errKeysPending
	case !s.fetched:
		return nil, errKeysNotKnown
	case s.keys.unusable[kid] != "":
		return nil, errUnusableKey
	}
	return nil, errUnknownKey
}

// untilFetch is how long until a fetch may start.
func (s *jwksSet) untilFetch() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(0, s.tried.Add(s.minInterval).Sub(s.now()))
}

// settled returns a channel closed once no fetch is under way.
func (s *jwksSet) settled() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil {
		return s.inflight
	}
	done := make(chan struct{})
	close(done)
	return done
}

// startFetch starts a fetch on a goroutine of its own (s.mu held).
func (s *jwksSet) startFetch(now time.Time) {
	s.tried = now
	done := make(chan struct{})
	s.inflight = done
	go func() {
		defer close(done)
		ks, err := s.fetch()
		s.mu.Lock()
		if err == nil {
			s.keys, s.fetched = ks, true
		}
		kept := 0
		if s.keys != nil {
			kept = len(s.keys.keys)
		}
		s.inflight = nil
		s.mu.Unlock()
		g := s.g
		if err != nil {
			g.metrics.jwksFetches.WithLabelValues(s.url, "error").Inc()
			g.log.Warn("jwks fetch failed; the keys known are kept", "url", s.url, "err", err, "keys_kept", kept)
			return
		}
		g.metrics.jwksFetches.WithLabelValues(s.url, "ok").Inc()
		g.log.Info("jwks fetched", "url", s.url, "keys", len(ks.keys), "unusable", len(ks.unusable))
		for kid, why := range ks.unusable {
			g.log.Debug("jwks key not used", "url", s.url, "kid", kid, "why", why)
		}
	}()
}

// fetch gets and parses the set. A document without one usable key is an
// error: replacing the keys known with none would lock everyone out.
func (s *jwksSet) fetch() (*keySet, error) {
	g := s.g
	select { // the first fetch starts before the client context exists
	case <-g.started:
	case <-g.authCtx.Done():
		return nil, g.authCtx.Err()
	}
	ctx, cancel := context.WithTimeout(g.authCtx, DefaultBackendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	client := &http.Client{
		Transport:     &lws.Transport{Context: g.ctx, TLS: s.tls},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	start := time.Now()
	resp, err := client.Do(req)
	g.metrics.backendSeconds.WithLabelValues("jwks", "http").Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("document over %d bytes", maxJWKS)
	}
	ks, err := parseJWKS(body)
	if err != nil {
		return nil, err
	}
	if len(ks.keys) == 0 {
		return nil, fmt.Errorf("no usable key (%d set aside)", len(ks.unusable))
	}
	return ks, nil
}
