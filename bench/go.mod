module github.com/lwsgate/lwsgate/bench

go 1.26.0

require (
	github.com/gorilla/websocket v1.5.3
	github.com/lwsgate/lwsgate v0.0.0
	github.com/lxzan/gws v1.8.9
)

require (
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
)

// cmd/lwspkgecho builds against this checkout of the lws package.
replace github.com/lwsgate/lwsgate => ../
