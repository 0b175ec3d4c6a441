module github.com/lwsgate/lwsgate/cmd/interop

go 1.26.0

// The tests import the self-signed certificate helper of this checkout.
replace github.com/lwsgate/lwsgate => ../..

require (
	github.com/chromedp/chromedp v0.23.0
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/lwsgate/lwsgate v0.0.0
	go.yaml.in/yaml/v3 v3.0.6
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
)
