package gateway

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// ApplyEnv applies LWSGATE_* overrides; getenv is os.Getenv in lwsgate.
// Errors name the variable.
//
//	LWSGATE_LISTEN        first listener's addr
//	LWSGATE_ADMIN_ADDR    admin.addr ("off" disables)
//	LWSGATE_ADMIN_TOKEN   admin.token
//	LWSGATE_LOG_LEVEL     log.level
//	LWSGATE_LOG_FORMAT    log.format
//	LWSGATE_TOKEN_SECRET  tokens.secret
//	LWSGATE_TOKEN_TTL     tokens.ttl
//	LWSGATE_CLUSTER_NODE  cluster.node
//	LWSGATE_NATS_URL      cluster.nats.url
//
// It also expands the values of backends[].headers and hooks.headers
// written ${NAME}: the variable NAME, which must be set.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	set := func(name string, f func(v string) error) error {
		if v := getenv(name); v != "" {
			if err := f(v); err != nil {
				return fmt.Errorf("%s=%q: %v", name, v, err)
			}
		}
		return nil
	}
	str := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	errs := []error{
		set("LWSGATE_LISTEN", func(v string) error {
			if len(c.Listeners) == 0 {
				c.Listeners = []ListenerConfig{{}}
			}
			c.Listeners[0].Addr = v
			return lws.CheckAddr(v)
		}),
		set("LWSGATE_ADMIN_ADDR", str(&c.Admin.Addr)),
		set("LWSGATE_ADMIN_TOKEN", str(&c.Admin.Token)),
		set("LWSGATE_LOG_LEVEL", str(&c.Log.Level)),
		set("LWSGATE_LOG_FORMAT", str(&c.Log.Format)),
		set("LWSGATE_TOKEN_SECRET", str(&c.Tokens.Secret)),
		set("LWSGATE_CLUSTER_NODE", str(&c.Cluster.Node)),
		set("LWSGATE_NATS_URL", str(&c.Cluster.NATS.URL)),
		set("LWSGATE_TOKEN_TTL", func(v string) error {
			d, err := time.ParseDuration(v)
			c.Tokens.TTL = Duration(d)
			return err
		}),
	}
	for i := range c.Backends {
		errs = append(errs, c.expandHeaders(fmt.Sprintf("backends[%d].headers", i), c.Backends[i].Headers, getenv)...)
	}
	errs = append(errs, c.expandHeaders("hooks.headers", c.Hooks.Headers, getenv)...)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return err
	}
	return c.requireSecret()
}

// envRef is a header value that names an environment variable: ${NAME}.
var envRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// expandHeaders replaces the values of h written ${NAME} by the variable
// NAME; p is h's path, for errors.
func (c *Config) expandHeaders(p string, h map[string]string, getenv func(string) string) []error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(h)) {
		m := envRef.FindStringSubmatch(h[k])
		if m == nil {
			continue
		}
		v := getenv(m[1])
		if v == "" {
			errs = append(errs, c.errAt(p+"."+k, "%s: the variable %s is not set", h[k], m[1]))
			continue
		}
		h[k] = v
	}
	return errs
}
