// Package gateway is lwsgate's communication core as a library: listeners
// for long links (tcplisten, WebSocket) and short links (httplisten,
// HTTP), a link table, a route table, channels, a routing step of ordered
// rules every message passes, client links to ws and http backends,
// webhooks, tokens, an admin API and Prometheus metrics, all on one
// libwebsockets context (package lws).
//
// A program embeds it with New and adds its own routing step with
// Options.Router; cmd/lwsgate is such a program. Start with the examples.
//
// # Configuration
//
// A Config comes from a YAML file (LoadConfig, ParseConfig) or from
// DefaultConfig changed in code, then LWSGATE_* variables (ApplyEnv).
// What it leaves out means the default, and nothing else: a field left out
// of the file, or zero in Go, has DefaultConfig's value (DefaultYAML
// writes them all out); a list written out (listeners, backends, rules)
// replaces the default one, even empty; the fields left out of a listener
// are the default listener's. Errors name the file, line and field.
// Reload applies a new Config to a running gateway without dropping links,
// or says which change needs a restart.
//
// # Links
//
// Three types describe a link, each at its own level:
//   - lws.Link is what the binding knows of a connection when it opened: a
//     value, the same for the link's life.
//   - LinkRecord is the gateway's record of a link in its link table, from
//     open to close: its user, counters, channels and relays. It is shared
//     and safe from any goroutine; a Router gets it as Message.Link.
//   - LinkInfo is a snapshot of a LinkRecord, as Gateway.Link and the admin
//     API and hooks give it (JSON).
//
// A link's type is tcplisten or httplisten (accepted by a listener: a
// WebSocket link, an HTTP connection) or tcpconnect or httpconnect (opened
// to a backend).
//
// # Cluster
//
// The cluster section picks the engine (package cluster). memory, the
// default, is this process alone: link ids are lws numbers, and nothing
// of the cluster runs on the message path. nats makes many gateways one
// (engine.go, admin_cluster.go): a publish reaches the channel's members
// on every node; a link id carries its node's incarnation; the admin API
// serves any node's link by forwarding the request to its owner, and
// merges its listings from every node; a node that dies has its links'
// disconnect hooks fired by one survivor; a node cut off closes its links
// (1012) and rejoins. Channels that match cluster.channels have a
// history (history.go): a publish is stored, acknowledged with its
// offset and epoch, and delivered by every node in the stream's order; a
// subscribe with since resumes on any node (recovered true or false).
// The engine's hooks run on its own goroutines and reach links only
// through the thread-safe paths below.
//
// # Concurrency
//
// The gateway runs on the service goroutine of its lws.Context: every
// libwebsockets callback, and so OnOpen, OnMessage and OnClose of each
// WebSocket link, the routing step (a Router's Route and the rules'
// actions) and the public listeners' HTTP handler run there, one at a
// time, and must not block. What may block runs on goroutines of its own
// and comes back through methods that are safe from any goroutine
// (lws.Conn.Send, lws.ResponseWriter.Respond, lws.Context.Do): the admin
// API (a net/http handler per request), forwards to http backends, dials
// of upstream links, webhooks, fetches of identity providers' key sets
// (auth.jwks_url: an upgrade never waits for one) and Shutdown.
//
// Shared state is guarded where it lives: the Config in force and the
// compiled rules and backends are swapped whole by Reload (atomic
// pointers, never changed in place); the link table, channels and route
// table have their own locks; a LinkRecord's counters are atomic and its
// lists are under its mutex. Every Gateway method is safe from any
// goroutine, a Router's Route included, except Shutdown and Close, which
// must not be called from Route (they wait for the service goroutine).
//
// # Errors
//
// Link operations return ErrGone (the link has closed), ErrUnknownLink (no
// link was ever issued the ID), ErrNotWebSocket, or in a cluster
// ErrRemoteLink (another node's link: the admin API reaches it); the
// admin API answers them 410, 404 and 409. A message no rule takes is answered with a JSON
// error message and logged; it never ends the link.
package gateway
