// Package testutil holds what the module's tests share across packages: a
// goroutine-safe buffer for logs (Buffer), test certificates made at run
// time (NewPKI, SelfSigned), so that no key is ever in the repository,
// and loopback ports for servers that must know each other's addresses
// before they start (FreePorts; Ports for the cluster bench, which is not
// a test). It imports nothing from the module, and nothing but the
// standard library.
package testutil
