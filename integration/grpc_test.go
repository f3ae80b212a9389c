package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rawCodec sends []byte messages as they are: a real gRPC exchange on the
// wire (length-prefixed messages, HTTP/2 trailers) without generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

// echoService is the test gRPC service. acks paces the server stream: the
// server sends message i+1 only after the client has received message i.
type echoService struct {
	acks        chan int
	deadlineHit chan time.Time
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "sluice.test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			return srv.(*echoService).unary(ctx, string(in))
		},
	}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Watch", ServerStreams: true, Handler: func(srv any, s grpc.ServerStream) error {
			return srv.(*echoService).watch(s)
		}},
		{StreamName: "Chat", ServerStreams: true, ClientStreams: true, Handler: func(srv any, s grpc.ServerStream) error {
			return srv.(*echoService).chat(s)
		}},
	},
}

func (e *echoService) unary(ctx context.Context, in string) (any, error) {
	switch in {
	case "sleep":
		<-ctx.Done()
		e.deadlineHit <- time.Now()
		return nil, status.FromContextError(ctx.Err()).Err()
	case "notfound":
		grpc.SetTrailer(ctx, metadata.Pairs("x-detail", "looked everywhere"))
		return nil, status.Error(codes.NotFound, "no such thing")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	grpc.SetHeader(ctx, metadata.Pairs("x-header", "h-"+in))
	grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t-"+in, "x-client", strings.Join(md.Get("x-client"), ",")))
	out := []byte("echo:" + in)
	return &out, nil
}

func (e *echoService) watch(s grpc.ServerStream) error {
	var in []byte
	if err := s.RecvMsg(&in); err != nil {
		return err
	}
	for i := range 5 {
		if i > 0 {
			time.Sleep(150 * time.Millisecond) // a pause between messages
		}
		msg := []byte(fmt.Sprintf("%d %d", i, time.Now().UnixNano()))
		if err := s.SendMsg(&msg); err != nil {
			return err
		}
		select {
		case got := <-e.acks:
			if got != i {
				return status.Errorf(codes.Internal, "ack %d for message %d", got, i)
			}
		case <-time.After(3 * time.Second):
			return status.Errorf(codes.Internal, "message %d not received within 3s: held back", i)
		case <-s.Context().Done():
			return s.Context().Err()
		}
	}
	s.SetTrailer(metadata.Pairs("x-sent", "5"))
	return nil
}

func (e *echoService) chat(s grpc.ServerStream) error {
	n := 0
	for {
		var in []byte
		err := s.RecvMsg(&in)
		if err == io.EOF {
			s.SetTrailer(metadata.Pairs("x-echoed", fmt.Sprint(n)))
			return nil
		}
		if err != nil {
			return err
		}
		out := append([]byte("echo:"), in...)
		if err := s.SendMsg(&out); err != nil {
			return err
		}
		n++
	}
}

// grpcUpstream serves the echo service over h2c on a loopback port.
func grpcUpstream(t *testing.T, svc *echoService) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&echoDesc, svc)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "h2c://" + ln.Addr().String()
}

// grpcClient dials sluice over TLS (ALPN h2), as a real gRPC client does.
func (p *sluiceProc) grpcClient(t *testing.T) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+p.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(p.tlsConfig())),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestGRPCThroughSluice(t *testing.T) {
	svc := &echoService{acks: make(chan int), deadlineHit: make(chan time.Time, 1)}
	up := grpcUpstream(t, svc)
	p := startSluice(t, "routes:\n"+route("grpc", "/", up, "timeouts: { idle: 1m, total: 0s }"))
	cc := p.grpcClient(t)

	t.Run("unary", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-client", "c1"), 10*time.Second)
		defer cancel()
		in, out := []byte("hello"), []byte(nil)
		var header, trailer metadata.MD
		if err := cc.Invoke(ctx, "/sluice.test.Echo/Unary", &in, &out, grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
			t.Fatal(err)
		}
		if string(out) != "echo:hello" {
			t.Fatalf("reply %q", out)
		}
		if got := header.Get("x-header"); len(got) != 1 || got[0] != "h-hello" {
			t.Fatalf("header metadata %v", header)
		}
		if got := trailer.Get("x-trailer"); len(got) != 1 || got[0] != "t-hello" {
			t.Fatalf("trailer metadata %v", trailer)
		}
		if got := trailer.Get("x-client"); len(got) != 1 || got[0] != "c1" {
			t.Fatalf("request metadata did not reach the server: %v", trailer)
		}
	})

	t.Run("error status and trailers", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		in, out := []byte("notfound"), []byte(nil)
		var trailer metadata.MD
		err := cc.Invoke(ctx, "/sluice.test.Echo/Unary", &in, &out, grpc.Trailer(&trailer))
		if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() != "no such thing" {
			t.Fatalf("status %v, want NotFound \"no such thing\"", err)
		}
		if got := trailer.Get("x-detail"); len(got) != 1 || got[0] != "looked everywhere" {
			t.Fatalf("trailer %v", trailer)
		}
	})

	t.Run("server stream with pauses", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s, err := cc.NewStream(ctx, &echoDesc.Streams[0], "/sluice.test.Echo/Watch")
		if err != nil {
			t.Fatal(err)
		}
		req := []byte("go")
		if err := s.SendMsg(&req); err != nil {
			t.Fatal(err)
		}
		s.CloseSend()
		var worst time.Duration
		for i := range 5 {
			var msg []byte
			if err := s.RecvMsg(&msg); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			var idx int
			var sent int64
			fmt.Sscanf(string(msg), "%d %d", &idx, &sent)
			if idx != i {
				t.Fatalf("message %d is %q", i, msg)
			}
			worst = max(worst, time.Since(time.Unix(0, sent)))
			svc.acks <- i
		}
		var end []byte
		if err := s.RecvMsg(&end); err != io.EOF {
			t.Fatalf("after 5 messages: %v, want EOF (status OK)", err)
		}
		if got := s.Trailer().Get("x-sent"); len(got) != 1 || got[0] != "5" {
			t.Fatalf("trailer %v", s.Trailer())
		}
		t.Logf("slowest message from send to receipt: %s", worst)
		if worst > time.Second {
			t.Fatalf("a message took %s", worst)
		}
	})

	t.Run("bidirectional echo", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s, err := cc.NewStream(ctx, &echoDesc.Streams[1], "/sluice.test.Echo/Chat")
		if err != nil {
			t.Fatal(err)
		}
		// Each echo must come back before the next message is sent: both
		// directions stream at once.
		for i := range 10 {
			msg := []byte(fmt.Sprintf("m%d", i))
			if err := s.SendMsg(&msg); err != nil {
				t.Fatal(err)
			}
			var reply []byte
			if err := s.RecvMsg(&reply); err != nil {
				t.Fatalf("echo %d: %v", i, err)
			}
			if string(reply) != "echo:"+string(msg) {
				t.Fatalf("echo %q", reply)
			}
		}
		s.CloseSend()
		var end []byte
		if err := s.RecvMsg(&end); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
		if got := s.Trailer().Get("x-echoed"); len(got) != 1 || got[0] != "10" {
			t.Fatalf("trailer %v", s.Trailer())
		}
	})

	t.Run("deadline expires", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		in, out := []byte("sleep"), []byte(nil)
		err := cc.Invoke(ctx, "/sluice.test.Echo/Unary", &in, &out)
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("deadline of 300ms took %s", took)
		}
		// The server's call ends too: the deadline went upstream.
		select {
		case at := <-svc.deadlineHit:
			if at.Sub(start) > 2*time.Second {
				t.Fatalf("server call ended %s after start", at.Sub(start))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("server call still running after the client's deadline")
		}
	})
}

func TestGRPCErrorsFromSluice(t *testing.T) {
	p := startSluice(t, "routes:\n"+
		route("down", "/sluice.test.Echo/", "h2c://"+strings.TrimPrefix(deadAddr(t), "http://")))
	cc := p.grpcClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, out := []byte("x"), []byte(nil)
	err := cc.Invoke(ctx, "/sluice.test.Echo/Unary", &in, &out)
	s := status.Convert(err)
	if s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "sluice") {
		t.Fatalf("got %v, want Unavailable from sluice", err)
	}
	// The route's response_header timeout: sluice ends the call with
	// DEADLINE_EXCEEDED and cancels the server's side.
	svc := &echoService{acks: make(chan int), deadlineHit: make(chan time.Time, 1)}
	up := grpcUpstream(t, svc)
	p2 := startSluice(t, "routes:\n"+route("slow", "/", up, "timeouts: { response_header: 300ms }"))
	start := time.Now()
	in2, out2 := []byte("sleep"), []byte(nil)
	err = p2.grpcClient(t).Invoke(ctx, "/sluice.test.Echo/Unary", &in2, &out2)
	if s := status.Convert(err); s.Code() != codes.DeadlineExceeded || !strings.Contains(s.Message(), "sluice") {
		t.Fatalf("got %v, want DeadlineExceeded from sluice", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("300ms header timeout took %s", took)
	}
	select {
	case <-svc.deadlineHit:
	case <-time.After(5 * time.Second):
		t.Fatal("server call still running after sluice's timeout")
	}

	// No route: sluice answers 404 for plain HTTP; gRPC gets a status.
	err = cc.Invoke(ctx, "/other.Service/Call", &in, &out)
	if status.Code(err) == codes.OK || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unrouted call: %v", err)
	}
}
