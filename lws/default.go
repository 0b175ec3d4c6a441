package lws

import "sync"

// The package's default client Context, for Dial and a Transport without
// a Context of their own.

var (
	defaultMu  sync.Mutex
	defaultCtx *Context
	defaultErr error
)

// DefaultContext returns the package's default client Context, which the
// package-level Dial and a Transport without a Context use. It is started
// on first use with default settings (no listeners) and lives until
// CloseDefaultContext. It returns nil if it could not start.
func DefaultContext() *Context {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultCtx == nil {
		defaultCtx, defaultErr = New(&Config{})
	}
	return defaultCtx
}

// CloseDefaultContext closes the default client Context, if it was started;
// the next DefaultContext starts a new one.
func CloseDefaultContext() error {
	defaultMu.Lock()
	c := defaultCtx
	defaultCtx = nil
	defaultMu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}
