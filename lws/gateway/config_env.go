package gateway

import (
	"errors"
	"fmt"
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
		set("LWSGATE_TOKEN_TTL", func(v string) error {
			d, err := time.ParseDuration(v)
			c.Tokens.TTL = Duration(d)
			return err
		}),
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.setDefaults()
	return c.Validate()
}
