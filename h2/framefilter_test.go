package h2

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"

	"go.uber.org/zap"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// pipeConn is a net.Conn over a byte buffer with a TLS state, enough for
// the filter.
type pipeConn struct {
	net.Conn
	r io.Reader
}

func (c pipeConn) Read(p []byte) (int, error)           { return c.r.Read(p) }
func (c pipeConn) ConnectionState() tls.ConnectionState { return tls.ConnectionState{} }
func (c pipeConn) RemoteAddr() net.Addr                 { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c pipeConn) Write(p []byte) (int, error)          { return len(p), nil }
func (c pipeConn) Close() error                         { return nil }
func (c pipeConn) LocalAddr() net.Addr                  { return c.RemoteAddr() }

// clientStream writes what an HTTP/2 client would send, with one HPACK
// encoder across all header blocks so later blocks refer to the dynamic
// table entries of earlier ones.
type clientStream struct {
	buf  bytes.Buffer
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
}

func newClientStream() *clientStream {
	c := &clientStream{}
	c.buf.WriteString(http2.ClientPreface)
	c.fr = http2.NewFramer(&c.buf, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	return c
}

func (c *clientStream) block(fields ...string) []byte {
	c.hbuf.Reset()
	for i := 0; i < len(fields); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), c.hbuf.Bytes()...)
}

func request(extra ...string) []string {
	return append([]string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "example.com", "user-agent", "test-client-with-a-long-name"}, extra...)
}

// serverFramer reads the filtered stream as x/net's server does.
func serverFramer(t *testing.T, c *clientStream) *http2.Framer {
	t.Helper()
	f := newFrameFilter(pipeConn{r: &c.buf}, maxReadFrameSize, 1<<20, zap.NewNop())
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(f, preface); err != nil || string(preface) != http2.ClientPreface {
		t.Fatalf("preface: %q %v", preface, err)
	}
	fr := http2.NewFramer(io.Discard, f)
	fr.ReadMetaHeaders = hpack.NewDecoder(initialHeaderTable, nil)
	fr.MaxHeaderListSize = 1 << 20
	fr.SetMaxReadFrameSize(maxReadFrameSize)
	return fr
}

func TestFrameFilterRefusesMalformedHeaderBlocks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		extra  []string
		refuse bool
	}{
		{"plain request", nil, false},
		{"te trailers", []string{"te", "trailers"}, false},
		{"connection", []string{"connection", "keep-alive"}, true},
		{"keep-alive", []string{"keep-alive", "timeout=5"}, true},
		{"proxy-connection", []string{"proxy-connection", "close"}, true},
		{"transfer-encoding", []string{"transfer-encoding", "chunked"}, true},
		{"upgrade", []string{"upgrade", "h2c"}, true},
		{"te gzip", []string{"te", "gzip"}, true},
	} {
		for _, padded := range []bool{false, true} {
			for _, split := range []bool{false, true} {
				name := tc.name
				if padded {
					name += "/padded"
				}
				if split {
					name += "/continuation"
				}
				t.Run(name, func(t *testing.T) {
					c := newClientStream()
					c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
					blk := c.block(request(tc.extra...)...)
					var pad []byte
					if padded {
						pad = make([]byte, 7)
					}
					if split {
						half := len(blk) / 2
						c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:half], EndStream: true})
						c.fr.WriteContinuation(1, true, blk[half:])
					} else {
						c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: true, PadLength: uint8(len(pad))})
					}
					// A second request whose block indexes the first's
					// dynamic table entries: it decodes only if both HPACK
					// tables stayed in step.
					c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: c.block(request()...), EndStream: false, EndHeaders: true})
					c.fr.WriteData(3, true, []byte("body bytes"))

					fr := serverFramer(t, c)
					f, err := fr.ReadFrame()
					if err != nil {
						t.Fatal(err)
					}
					sf := f.(*http2.SettingsFrame)
					if sf.NumSettings() != 1 || sf.Setting(0).Val != 1 || sf.HasDuplicates() {
						t.Fatalf("settings not deduplicated to the last value: %v", sf)
					}

					f, err = fr.ReadFrame()
					var se http2.StreamError
					if tc.refuse {
						if !errors.As(err, &se) || se.StreamID != 1 || se.Code != http2.ErrCodeProtocol {
							t.Fatalf("want stream error PROTOCOL_ERROR on stream 1, got %v, %v", f, err)
						}
					} else if err != nil {
						t.Fatalf("valid request refused: %v", err)
					}

					f, err = fr.ReadFrame()
					if err != nil {
						t.Fatalf("next request: %v", err)
					}
					mh := f.(*http2.MetaHeadersFrame)
					if mh.PseudoValue("authority") != "example.com" || len(mh.RegularFields()) != 1 {
						t.Fatalf("second request decoded wrongly: %v", mh.Fields)
					}
					f, err = fr.ReadFrame()
					if err != nil {
						t.Fatal(err)
					}
					if d := f.(*http2.DataFrame); string(d.Data()) != "body bytes" || !d.StreamEnded() {
						t.Fatalf("data frame changed: %q", d.Data())
					}
				})
			}
		}
	}
}

func TestDedupeSettings(t *testing.T) {
	frame := func(ss ...http2.Setting) []byte {
		var b bytes.Buffer
		http2.NewFramer(&b, nil).WriteSettings(ss...)
		return b.Bytes()
	}
	iws := func(v uint32) http2.Setting { return http2.Setting{ID: http2.SettingInitialWindowSize, Val: v} }
	mfs := func(v uint32) http2.Setting { return http2.Setting{ID: http2.SettingMaxFrameSize, Val: v} }
	for _, tc := range []struct {
		name string
		in   []http2.Setting
		want []http2.Setting
	}{
		{"no duplicates", []http2.Setting{iws(10), mfs(20000)}, []http2.Setting{iws(10), mfs(20000)}},
		{"last value wins", []http2.Setting{iws(100), mfs(20000), iws(1)}, []http2.Setting{mfs(20000), iws(1)}},
		// An invalid value must still reach x/net, which refuses it.
		{"invalid value kept", []http2.Setting{iws(1 << 31), iws(1)}, []http2.Setting{iws(1 << 31), iws(1)}},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dedupeSettings(frame(tc.in...))
			if !bytes.Equal(got, frame(tc.want...)) {
				t.Fatalf("got % x, want % x", got, frame(tc.want...))
			}
		})
	}
}

func TestFrameFilterPassesOversizedFrameToXNet(t *testing.T) {
	c := newClientStream()
	c.fr.WriteData(1, true, make([]byte, maxReadFrameSize+1))
	fr := serverFramer(t, c)
	if _, err := fr.ReadFrame(); !errors.Is(err, http2.ErrFrameTooLarge) {
		t.Fatalf("want ErrFrameTooLarge, got %v", err)
	}
}

// TestFrameFilterStreamsOtherFramesUnbuffered: with nothing to refuse or
// deduplicate, the filtered stream is the client's stream byte for byte,
// however the connection splits it; DATA and the other frames the filter
// does not change never pass through its buffer, and a large header
// block's buffer is not kept once x/net has read it.
func TestFrameFilterStreamsOtherFramesUnbuffered(t *testing.T) {
	c := newClientStream()
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(request()...), EndHeaders: true})
	c.fr.WriteData(1, false, payload(maxReadFrameSize))
	c.fr.WriteDataPadded(1, false, []byte("padded"), make([]byte, 9))
	c.fr.WriteWindowUpdate(0, 1000)
	c.fr.WritePing(false, [8]byte{1, 2, 3})
	c.fr.WriteData(1, true, nil)
	big := c.block(request("x-big", string(payload(6000)))...)
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: big[:3000], EndStream: true})
	c.fr.WriteContinuation(3, true, big[3000:])
	c.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	want := append([]byte(nil), c.buf.Bytes()...)

	for _, tc := range []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte at a time", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFrameFilter(pipeConn{r: tc.wrap(bytes.NewReader(want))}, maxReadFrameSize, 1<<20, zap.NewNop())
			got, err := io.ReadAll(iotest.OneByteReader(f))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("filtered stream differs: %d bytes, want %d", len(got), len(want))
			}
			if cap(f.buf) > keepFrameBuf {
				t.Errorf("frame buffer of %d bytes kept", cap(f.buf))
			}
		})
	}

	// DATA frames, however large, never take the frame buffer.
	d := newClientStream()
	d.fr.WriteData(1, false, payload(maxReadFrameSize))
	d.fr.WriteData(1, true, payload(100))
	f := newFrameFilter(pipeConn{r: &d.buf}, maxReadFrameSize, 1<<20, zap.NewNop())
	if _, err := io.ReadFull(f, make([]byte, len(http2.ClientPreface))); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(io.Discard, f)
	fr.SetMaxReadFrameSize(maxReadFrameSize)
	for range 2 {
		fm, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := fm.(*http2.DataFrame); !ok {
			t.Fatalf("got %v", fm)
		}
		if f.buf != nil {
			t.Fatalf("a DATA frame went through the frame buffer (%d bytes)", cap(f.buf))
		}
	}
}
