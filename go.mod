module github.com/lwsgate/lwsgate

go 1.26

require (
	github.com/gorilla/websocket v1.5.3
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
