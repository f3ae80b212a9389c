module github.com/sluiceproxy/sluice

go 1.26.8

require (
	github.com/andybalholm/brotli v1.2.8
	github.com/goccy/go-yaml v1.19.2
	github.com/klauspost/compress v1.20.3
	go.uber.org/zap v1.28.0
	golang.org/x/net v0.62.0
	google.golang.org/grpc v1.85.0
)

require (
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
