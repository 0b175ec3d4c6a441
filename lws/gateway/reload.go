package gateway

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/lwsgate/lwsgate/lws"
)

// Reload applies a new configuration without dropping links: rules, log
// level, auth, hooks, backends, tokens' TTL, shutdown timings and the
// listeners' limits but max_header_bytes (lws.Context.SetListenerLimits:
// to open links too). Changing what a listener binds to (addresses, link
// types, TLS, keepalive) or max_header_bytes (libwebsockets' header
// buffer) needs a restart: Reload returns an error naming the field and
// applies nothing.
func (g *Gateway) Reload(cfg *Config) error {
	cfg = cfg.Clone()
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	old := g.cfg.Load()
	if err := restartNeeded(old, cfg); err != nil {
		return err
	}
	for _, h := range keptHeaders(cfg) {
		if !slices.Contains(g.kept, h) {
			return fmt.Errorf("reload: forward_headers: %s is not among the headers the listeners keep (%s): restart to apply", h, strings.Join(g.kept, ", "))
		}
	}
	auth, err := g.compileAuth(cfg)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if err := g.setListenerLimits(l.Name, listenerLimits(&l.Limits)); err != nil {
			return fmt.Errorf("reload: listeners[%d].limits: %w", i, err)
		}
	}
	rules := compileRules(cfg.Rules)
	g.rules.Store(rules)
	g.setBackends(cfg)
	g.tokens.ttl.Store(int64(cfg.Tokens.TTL.D()))
	g.cfg.Store(cfg)
	g.auth.Store(&auth)
	g.sweepJWKS(cfg)
	if g.level != nil {
		_ = g.level.UnmarshalText([]byte(cfg.Log.Level))
	}
	g.log.Info("config reloaded", "rules", len(rules.rules), "backends", len(cfg.Backends), "log_level", cfg.Log.Level)
	return nil
}

// restartNeeded says which change of b from a Reload cannot apply.
func restartNeeded(a, b *Config) error {
	if len(a.Listeners) != len(b.Listeners) {
		return errors.New("reload: listeners added or removed: restart to apply")
	}
	for i := range a.Listeners {
		x, y := &a.Listeners[i], &b.Listeners[i]
		p := fmt.Sprintf("reload: listeners[%d]", i)
		switch {
		case x.Name != y.Name:
			return fmt.Errorf("%s.name changed: restart to apply", p)
		case x.Addr != y.Addr:
			return fmt.Errorf("%s.addr changed: restart to apply", p)
		case strings.Join(x.Links, ",") != strings.Join(y.Links, ","):
			return fmt.Errorf("%s.links changed: restart to apply", p)
		case (x.TLS == nil) != (y.TLS == nil) || x.TLS != nil && *x.TLS != *y.TLS:
			return fmt.Errorf("%s.tls changed: restart to apply", p)
		case x.Keepalive != y.Keepalive:
			return fmt.Errorf("%s.keepalive changed: restart to apply", p)
		case strings.Join(x.Subprotocols, ",") != strings.Join(y.Subprotocols, ","):
			return fmt.Errorf("%s.subprotocols changed: restart to apply", p)
		case x.Compression != y.Compression:
			return fmt.Errorf("%s.compression changed: restart to apply", p)
		case strings.Join(x.TrustedProxies, ",") != strings.Join(y.TrustedProxies, ",") || !strings.EqualFold(x.ForwardedHeader, y.ForwardedHeader) || x.ProxyProtocol != y.ProxyProtocol:
			return fmt.Errorf("%s: trusted_proxies, forwarded_header and proxy_protocol need a restart", p)
		case y.Limits.MaxHeaderBytes != x.Limits.MaxHeaderBytes:
			return fmt.Errorf("%s.limits.max_header_bytes changed: restart to apply (libwebsockets' header buffer)", p)
		}
	}
	if a.Admin.Addr != b.Admin.Addr {
		return errors.New("reload: admin.addr changed: restart to apply")
	}
	if a.Tokens.Secret != b.Tokens.Secret {
		return errors.New("reload: tokens.secret changed: restart to apply (issued tokens would break)")
	}
	if a.NetworkTimeout != b.NetworkTimeout {
		return errors.New("reload: network_timeout changed: restart to apply")
	}
	if a.Workers != b.Workers {
		return errors.New("reload: workers changed: restart to apply")
	}
	if a.EventLoop != b.EventLoop {
		return errors.New("reload: event_loop changed: restart to apply")
	}
	if *a.Log.Trace != *b.Log.Trace || a.Log.LinkTrace != b.Log.LinkTrace || a.Log.Format != b.Log.Format {
		return errors.New("reload: log.trace, log.link_trace and log.format need a restart")
	}
	if !reflect.DeepEqual(a.Cluster, b.Cluster) {
		// The engine reads it once, when it joins: a changed history
		// (cluster.channels) would otherwise be silently ignored.
		return errors.New("reload: cluster changed: restart to apply (the engine reads it when it joins)")
	}
	return nil
}

// listenerLimits are a listener's limits as lws changes them on a running
// context (Reload).
func listenerLimits(l *LimitsConfig) lws.ListenerLimits {
	return lws.ListenerLimits{
		MaxMessageSize: int64(l.MaxMessage),
		MaxSendQueue:   int64(l.MaxSendQueue),
		MaxBodySize:    int64(l.MaxBody),
		MaxLinks:       l.MaxLinks,
		MaxLinksPerIP:  l.MaxLinksPerIP,
		AcceptRate:     l.AcceptRate,
	}
}

// setListenerLimits changes a listener's limits on every worker.
func (g *Gateway) setListenerLimits(name string, lim lws.ListenerLimits) error {
	if grp := g.groups[name]; grp != nil {
		return grp.SetListenerLimits(name, lim)
	}
	return g.ctx.SetListenerLimits(name, lim)
}
