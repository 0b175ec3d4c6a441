package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// Validate checks c as New would run it: what c leaves out stands for its
// default there, so it does here too (c itself is not changed). It reports
// every error, each naming the file, line and field when c came from a
// file.
func (c *Config) Validate() error {
	d := c.Clone()
	d.setDefaults()
	v := &validator{c: d}
	v.log()
	backends := v.backends()
	listeners := v.listeners(backends)
	v.admin()
	if d.Tokens.TTL < Duration(time.Second) {
		v.bad("tokens.ttl", "%v: at least 1s", d.Tokens.TTL.D())
	}
	for i := range d.Rules {
		if err := checkRule(&d.Rules[i], backends, listeners); err != nil {
			v.bad(fmt.Sprintf("rules[%d].%s", i, err.field), "%s", err.msg)
		}
	}
	v.hooks()
	v.cluster()
	if d.NetworkTimeout < Duration(time.Second) {
		v.bad("network_timeout", "%v: at least 1s", d.NetworkTimeout.D())
	}
	if d.Workers < 0 || d.Workers > maxWorkers {
		v.bad("workers", "%d: want 0 (one per CPU) to %d", d.Workers, maxWorkers)
	}
	if err := lws.CheckEventLoop(lws.EventLoop(d.EventLoop)); err != nil {
		v.bad("event_loop", "%q: %v", d.EventLoop, err)
	}
	if d.Shutdown.Deadline < d.Shutdown.Drain {
		v.bad("shutdown.deadline", "%v is shorter than drain %v", d.Shutdown.Deadline.D(), d.Shutdown.Drain.D())
	}
	return errors.Join(v.errs...)
}

// validator collects the errors of one Validate.
type validator struct {
	c    *Config // defaulted
	errs []error
}

func (v *validator) bad(path, format string, args ...any) {
	v.errs = append(v.errs, v.c.errAt(path, format, args...))
}

func (v *validator) log() {
	switch v.c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.bad("log.level", "%q: want debug, info, warn or error", v.c.Log.Level)
	}
	if v.c.Log.Format != "text" && v.c.Log.Format != "json" {
		v.bad("log.format", "%q: want text or json", v.c.Log.Format)
	}
	if len(v.c.Listeners) == 0 {
		v.bad("listeners", "at least one listener is required")
	}
}

// backends checks the backends and returns them by name.
func (v *validator) backends() map[string]*BackendConfig {
	backends := map[string]*BackendConfig{}
	for i := range v.c.Backends {
		b := &v.c.Backends[i]
		p := fmt.Sprintf("backends[%d]", i)
		if b.Name == "" {
			v.bad(p+".name", "required")
		} else if backends[b.Name] != nil {
			v.bad(p+".name", "%q is used twice", b.Name)
		}
		backends[b.Name] = b
		u, err := url.Parse(b.URL)
		if err != nil || u.Host == "" || !map[string]bool{"ws": true, "wss": true, "http": true, "https": true}[u.Scheme] {
			v.bad(p+".url", "%q: want a ws://, wss://, http:// or https:// URL", b.URL)
		}
		if b.CA != "" {
			if err := lws.CheckReadable(b.CA); err != nil {
				v.bad(p+".ca", "%v", err)
			}
		}
		if b.Reconnect.Max < b.Reconnect.Initial {
			v.bad(p+".reconnect.max", "%v is below initial %v", b.Reconnect.Max.D(), b.Reconnect.Initial.D())
		}
		checkHeaders(b.ForwardHeaders, b.Headers, func(f, format string, args ...any) { v.bad(p+"."+f, format, args...) })
	}
	return backends
}

// listeners checks the listeners and returns their names.
func (v *validator) listeners(backends map[string]*BackendConfig) map[string]bool {
	names := map[string]bool{}
	ports := map[string]string{}
	for i := range v.c.Listeners {
		l := &v.c.Listeners[i]
		p := fmt.Sprintf("listeners[%d]", i)
		if names[l.Name] {
			v.bad(p+".name", "%q is used twice", l.Name)
		}
		names[l.Name] = true
		if err := lws.CheckAddr(l.Addr); err != nil {
			v.bad(p+".addr", "%q: %v", l.Addr, err)
		} else if other, ok := ports[l.Addr]; ok && !strings.HasSuffix(l.Addr, ":0") {
			v.bad(p+".addr", "%q is also listener %q's", l.Addr, other)
		}
		ports[l.Addr] = l.Name
		if _, err := parseAccept(l.Links); err != nil {
			v.bad(p+".links", "%v", err)
		}
		v.listenerTLS(p, l.TLS)
		v.keepalive(p, l.Keepalive)
		if _, err := parseProxies(l.TrustedProxies); err != nil {
			v.bad(fmt.Sprintf("%s.trusted_proxies[%d]", p, err.index), "%q: %v", l.TrustedProxies[err.index], err.err)
		}
		if err := lws.CheckForwardedHeader(l.ForwardedHeader); err != nil {
			v.bad(p+".forwarded_header", "%q: %v", l.ForwardedHeader, err)
		}
		if l.Limits.MaxHeaderBytes > 65535 {
			v.bad(p+".limits.max_header_bytes", "%d: at most 65535", l.Limits.MaxHeaderBytes)
		}
		for j, sp := range l.Subprotocols {
			if strings.HasPrefix(sp, tokenProtocolPrefix) {
				v.bad(fmt.Sprintf("%s.subprotocols[%d]", p, j), "%q: %s is the prefix of a token (auth), not a subprotocol", sp, tokenProtocolPrefix)
			}
		}
		v.auth(p+".auth", &l.Auth)
		v.listenerBackends(p, l, backends)
	}
	return names
}

// auth checks a listener's auth (p is its path): the origins, and the
// keys, key set and claims of its tokens, which need require_token.
func (v *validator) auth(p string, a *AuthConfig) {
	for j, o := range a.Origins {
		if o != "*" {
			if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
				v.bad(fmt.Sprintf("%s.origins[%d]", p, j), "%q: want scheme://host[:port] or *", o)
			}
		}
	}
	if !a.RequireToken {
		for _, f := range []struct {
			name string
			set  bool
		}{{"keys", len(a.Keys) > 0}, {"jwks_url", a.JWKSURL != ""}, {"issuer", a.Issuer != ""}, {"audience", a.Audience != ""}, {"channels_claim", a.ChannelsClaim != ""}} {
			if f.set {
				v.bad(p+"."+f.name, "set without require_token: no token is asked for")
			}
		}
	}
	kids := map[string]bool{}
	noKid := map[string]bool{}
	for j, k := range a.Keys {
		kp := fmt.Sprintf("%s.keys[%d]", p, j)
		switch k.Alg {
		case algRS256, algES256, algEdDSA:
		default:
			v.bad(kp+".alg", "%q: want RS256, ES256 or EdDSA", k.Alg)
			continue
		}
		if k.File == "" {
			v.bad(kp+".file", "required: a PEM public key")
		} else if _, err := loadKey(k); err != nil {
			v.bad(kp+".file", "%v", err)
		}
		switch {
		case k.Kid == "" && noKid[k.Alg]:
			v.bad(kp+".kid", "a second %s key without kid: which one a token without kid means cannot be known", k.Alg)
		case k.Kid == "":
			noKid[k.Alg] = true
		case kids[k.Kid]:
			v.bad(kp+".kid", "%q is used twice", k.Kid)
		}
		kids[k.Kid] = true
	}
	if a.JWKSURL != "" {
		if u, err := url.Parse(a.JWKSURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.bad(p+".jwks_url", "%q: want an http:// or https:// URL", a.JWKSURL)
		}
	}
	if a.JWKSCA != "" {
		if err := lws.CheckReadable(a.JWKSCA); err != nil {
			v.bad(p+".jwks_ca", "%v", err)
		}
	}
	if a.JWKSMinInterval < Duration(time.Second) {
		v.bad(p+".jwks_min_interval", "%v: at least 1s", a.JWKSMinInterval.D())
	}
	if a.JWKSRefresh < a.JWKSMinInterval {
		v.bad(p+".jwks_refresh", "%v is below jwks_min_interval %v", a.JWKSRefresh.D(), a.JWKSMinInterval.D())
	}
	if a.Leeway > Duration(maxLeeway) {
		v.bad(p+".leeway", "%v: at most %v", a.Leeway.D(), maxLeeway)
	}
}

func (v *validator) listenerTLS(p string, t *TLSConfig) {
	if t == nil {
		return
	}
	if t.Cert == "" || t.Key == "" {
		v.bad(p+".tls", "cert and key are both required")
	}
	for _, f := range []struct{ name, path string }{{"cert", t.Cert}, {"key", t.Key}, {"client_ca", t.ClientCA}} {
		if f.path != "" {
			if err := lws.CheckReadable(f.path); err != nil {
				v.bad(p+".tls."+f.name, "%v", err)
			}
		}
	}
}

// keepalive checks the ping times as lws does (lws.CheckKeepalive), in
// the config's words, and refuses a ping_timeout without ping_interval.
func (v *validator) keepalive(p string, k KeepaliveConfig) {
	if k.PingInterval == 0 && k.PingTimeout > 0 {
		v.bad(p+".keepalive.ping_timeout", "set without ping_interval")
		return
	}
	var ke *lws.KeepaliveError
	if !errors.As(lws.CheckKeepalive(k.PingInterval.D(), k.PingTimeout.D()), &ke) {
		return
	}
	if ke.Field == "PingTimeout" {
		v.bad(p+".keepalive.ping_timeout", "%v must exceed ping_interval %v", k.PingTimeout.D(), k.PingInterval.D())
	} else {
		v.bad(p+".keepalive", "ping times are whole seconds from 1s to 65535s")
	}
}

// listenerBackends checks the backends a listener names.
func (v *validator) listenerBackends(p string, l *ListenerConfig, backends map[string]*BackendConfig) {
	if l.Upstream != "" {
		if b := backends[l.Upstream]; b == nil {
			v.bad(p+".upstream", "%q: no such backend", l.Upstream)
		} else if !strings.HasPrefix(b.URL, "ws") {
			v.bad(p+".upstream", "%q is not a ws(s) backend", l.Upstream)
		}
	}
	for j, f := range l.Forward {
		fp := fmt.Sprintf("%s.forward[%d]", p, j)
		if !strings.HasPrefix(f.Prefix, "/") {
			v.bad(fp+".prefix", "%q: must start with /", f.Prefix)
		}
		if b := backends[f.Backend]; b == nil {
			v.bad(fp+".backend", "%q: no such backend", f.Backend)
		} else if !strings.HasPrefix(b.URL, "http") {
			v.bad(fp+".backend", "%q is not an http(s) backend", f.Backend)
		}
	}
}

func (v *validator) admin() {
	a := v.c.Admin.Addr
	if a == "off" {
		return
	}
	if err := lws.CheckAddr(a); err != nil {
		v.bad("admin.addr", "%q: %v", a, err)
	}
	for _, l := range v.c.Listeners {
		if l.Addr == a && !strings.HasSuffix(l.Addr, ":0") {
			v.bad("admin.addr", "%q is also listener %q's", a, l.Name)
		}
	}
}

func (v *validator) hooks() {
	h := v.c.Hooks
	for _, hk := range []struct{ name, url string }{{"connect", h.Connect}, {"message", h.Message}, {"disconnect", h.Disconnect}} {
		if hk.url == "" {
			continue
		}
		if u, err := url.Parse(hk.url); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.bad("hooks."+hk.name, "%q: want an http:// or https:// URL", hk.url)
		}
	}
	if h.Retries < 0 {
		v.bad("hooks.retries", "%d: must not be negative", h.Retries)
	}
	checkHeaders(h.ForwardHeaders, h.Headers, func(f, format string, args ...any) { v.bad("hooks."+f, format, args...) })
}

type fieldErr struct{ field, msg string }

// checkRule checks one rule: its match, then its action (actionTable).
func checkRule(r *RuleConfig, backends map[string]*BackendConfig, listeners map[string]bool) *fieldErr {
	m := r.Match
	if m.Listener != "" && !listeners[m.Listener] {
		return &fieldErr{"match.listener", fmt.Sprintf("%q: no such listener", m.Listener)}
	}
	if m.Type != "" && m.Type != "text" && m.Type != "binary" {
		return &fieldErr{"match.type", fmt.Sprintf("%q: want text or binary", m.Type)}
	}
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		return &fieldErr{"match.path", fmt.Sprintf("%q: must start with /", m.Path)}
	}
	if m.Value != nil && m.Field == "" {
		return &fieldErr{"match.value", "set without match.field"}
	}
	if m.Field != "" && !validFieldPath(m.Field) {
		return &fieldErr{"match.field", fmt.Sprintf("%q: want a dotted path such as action or data.type", m.Field)}
	}
	return checkAction(r, backends)
}

func validFieldPath(s string) bool {
	if s == "" {
		return false
	}
	for _, p := range strings.Split(s, ".") {
		if p == "" {
			return false
		}
	}
	return true
}

// proxyError is an entry of trusted_proxies that is not an address or
// prefix.
type proxyError struct {
	index int
	err   error
}

// parseProxies parses trusted_proxies: IP addresses (one address each)
// and CIDR prefixes.
func parseProxies(list []string) ([]netip.Prefix, *proxyError) {
	var out []netip.Prefix
	for i, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, &proxyError{i, fmt.Errorf("want an IP address or a CIDR prefix")}
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
