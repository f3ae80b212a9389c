package h2

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/net/http2/hpack"

	"github.com/sluiceproxy/sluice/internal/xnet/http2"
)

// frameFilter sits between a client's TLS connection and the x/net/http2
// server and fixes, on the read side only, what x/net gets wrong about
// RFC 9113 (h2spec cases, see docs/conformance.md):
//
//   - 8.2.2: a request carrying a connection-specific header field
//     (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding,
//     Upgrade) or a TE other than "trailers" is malformed and must be
//     refused with a stream error PROTOCOL_ERROR. x/net hands such requests
//     to the handler. The filter decodes every header block with its own
//     HPACK decoder (the same table size as x/net's) and, when a block is
//     malformed, appends one literal field with an upper-case name — not
//     indexed, so both HPACK tables stay in step — to its last frame. x/net
//     refuses upper-case names with exactly the stream error required.
//   - 6.5.3: a SETTINGS frame may repeat a parameter and the values are
//     processed in order; x/net closes the connection on duplicates. The
//     filter keeps only the last value of each parameter when every value
//     is valid, which ends in the same state.
//
// DATA, WINDOW_UPDATE and every other frame pass through unchanged, so
// streaming and flow control are untouched. Only the frames the filter
// may change (HEADERS, CONTINUATION, SETTINGS) are read whole into a
// buffer; the payload of every other frame goes from the TLS connection
// straight into x/net's buffer, after the 9-byte header the filter
// read to see the frame's type. So the filter holds no read buffer of
// its own (tls.Conn buffers a record already) and copies nothing on the
// hot path; a header block frame's buffer is dropped once x/net has it,
// unless it is small. Anything the filter cannot parse is passed through
// from then on, for x/net to refuse as it would have.
type frameFilter struct {
	tlsConn
	log         *zap.Logger
	maxFrame    uint32
	out         []byte // bytes ready for x/net
	off         int
	direct      int // payload bytes still to pass straight from the connection
	hdr         [frameHeaderLen]byte
	buf         []byte
	prefaceLeft int
	passthrough bool

	tw *combineConn // the socket's writes that do not block, if it has them

	hdec    *hpack.Decoder
	inBlock bool
	refused string // why the header block being decoded is malformed
}

const (
	frameHeaderLen      = 9
	initialHeaderTable  = 4096 // x/net never advertises SETTINGS_HEADER_TABLE_SIZE
	frameData           = 0x0
	frameHeaders        = 0x1
	frameSettings       = 0x4
	frameContinuation   = 0x9
	flagEndHeaders      = 0x4
	flagPadded          = 0x8
	flagPriority        = 0x20
	flagSettingsAck     = 0x1
	refusedMarkerName   = "X-Sluice-Malformed"
	maxSettingsPerFrame = 100 // x/net's limit; larger frames are passed as they are
	// keepFrameBuf is the largest whole-frame buffer kept between frames:
	// header blocks are usually far smaller, and a quiet connection should
	// not hold a 16 KiB one for the rest of its life.
	keepFrameBuf = 2 << 10
)

// tlsConn is what x/net needs of the connection: it reads the TLS state
// through ConnectionState.
type tlsConn interface {
	net.Conn
	ConnectionState() tls.ConnectionState
}

func newFrameFilter(c tlsConn, maxFrame uint32, maxHeaderList uint32, log *zap.Logger) *frameFilter {
	f := &frameFilter{
		tlsConn:     c,
		log:         log,
		maxFrame:    maxFrame,
		prefaceLeft: len(http2.ClientPreface),
	}
	f.hdec = hpack.NewDecoder(initialHeaderTable, f.checkField)
	f.hdec.SetMaxStringLength(int(maxHeaderList))
	return f
}

// Read hands x/net the filtered byte stream.
func (f *frameFilter) Read(p []byte) (int, error) {
	for {
		if f.off < len(f.out) {
			n := copy(p, f.out[f.off:])
			f.off += n
			if f.off == len(f.out) {
				f.release()
			}
			return n, nil
		}
		if f.direct > 0 {
			if len(p) > f.direct {
				p = p[:f.direct]
			}
			n, err := f.tlsConn.Read(p)
			f.direct -= n
			return n, err
		}
		if f.passthrough {
			return f.tlsConn.Read(p)
		}
		if err := f.next(); err != nil {
			return 0, err
		}
	}
}

// release drops what x/net has read, and a large frame buffer with it.
func (f *frameFilter) release() {
	f.out, f.off = nil, 0
	if cap(f.buf) > keepFrameBuf {
		f.buf = nil
	}
}

// next reads the preface or the next frame's header, and a frame the
// filter may change whole, into f.out (filtered) and f.direct.
func (f *frameFilter) next() error {
	if f.prefaceLeft > 0 {
		f.direct, f.prefaceLeft = f.prefaceLeft, 0
		return nil
	}
	hdr := f.hdr[:]
	if _, err := io.ReadFull(f.tlsConn, hdr); err != nil {
		return err
	}
	f.out, f.off = hdr, 0
	length := uint32(hdr[0])<<16 | uint32(hdr[1])<<8 | uint32(hdr[2])
	typ, flags := hdr[3], hdr[4]
	if length > f.maxFrame {
		// x/net answers FRAME_SIZE_ERROR and closes; never buffer it.
		f.passthrough = true
		return nil
	}
	switch typ {
	case frameHeaders, frameContinuation, frameSettings:
	default:
		f.direct = int(length)
		return nil
	}
	f.buf = grow(f.buf, frameHeaderLen+int(length))
	copy(f.buf, hdr)
	if _, err := io.ReadFull(f.tlsConn, f.buf[frameHeaderLen:]); err != nil {
		return err
	}
	f.out = f.buf
	payload := f.buf[frameHeaderLen:]
	streamID := binary.BigEndian.Uint32(hdr[5:9]) & (1<<31 - 1)

	switch typ {
	case frameSettings:
		if flags&flagSettingsAck == 0 && streamID == 0 {
			f.out = dedupeSettings(f.buf)
		}
	case frameHeaders:
		if f.inBlock {
			f.passthrough = true // x/net: PROTOCOL_ERROR
			return nil
		}
		frag, ok := headersFragment(flags, payload)
		if !ok {
			f.passthrough = true
			return nil
		}
		f.inBlock, f.refused = true, ""
		return f.decode(frag, flags, streamID)
	case frameContinuation:
		if !f.inBlock {
			f.passthrough = true
			return nil
		}
		return f.decode(payload, flags, streamID)
	}
	return nil
}

// decode feeds one header block fragment to the shadow decoder and, at
// the end of a malformed block, marks it for x/net to refuse.
func (f *frameFilter) decode(frag []byte, flags byte, streamID uint32) error {
	if _, err := f.hdec.Write(frag); err != nil {
		f.passthrough = true // x/net: COMPRESSION_ERROR
		return nil
	}
	if flags&flagEndHeaders == 0 {
		return nil
	}
	f.inBlock = false
	if err := f.hdec.Close(); err != nil {
		f.passthrough = true
		return nil
	}
	if f.refused != "" {
		f.log.Debug("refusing malformed HTTP/2 request", zap.Uint32("stream", streamID), zap.String("reason", f.refused), zap.String("remote", f.RemoteAddr().String()))
		f.out = appendMarker(f.buf, flags)
	}
	return nil
}

// checkField is the shadow decoder's emit function (RFC 9113, 8.2.2).
func (f *frameFilter) checkField(hf hpack.HeaderField) {
	if f.refused != "" {
		return
	}
	switch hf.Name {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
		f.refused = "connection-specific header field " + hf.Name
	case "te":
		if !strings.EqualFold(strings.TrimSpace(hf.Value), "trailers") {
			f.refused = "te other than trailers"
		}
	}
}

// headersFragment returns the header block fragment of a HEADERS payload.
func headersFragment(flags byte, p []byte) ([]byte, bool) {
	pad := 0
	if flags&flagPadded != 0 {
		if len(p) < 1 {
			return nil, false
		}
		pad = int(p[0])
		p = p[1:]
	}
	if flags&flagPriority != 0 {
		if len(p) < 5 {
			return nil, false
		}
		p = p[5:]
	}
	if pad > len(p) {
		return nil, false
	}
	return p[:len(p)-pad], true
}

// appendMarker inserts a literal header field without indexing and with
// an upper-case (invalid) name at the end of the header block fragment in
// frame, before any padding, and fixes the frame length.
func appendMarker(frame []byte, flags byte) []byte {
	marker := []byte{0x00, byte(len(refusedMarkerName))}
	marker = append(marker, refusedMarkerName...)
	marker = append(marker, 0x00) // empty value
	pad := 0
	if frame[3] == frameHeaders && flags&flagPadded != 0 {
		pad = int(frame[frameHeaderLen])
	}
	at := len(frame) - pad
	out := make([]byte, 0, len(frame)+len(marker))
	out = append(out, frame[:at]...)
	out = append(out, marker...)
	out = append(out, frame[at:]...)
	setLength(out, len(out)-frameHeaderLen)
	return out
}

// dedupeSettings keeps the last value of each repeated parameter of a
// SETTINGS frame when every value is valid; otherwise the frame goes to
// x/net unchanged and is refused there.
func dedupeSettings(frame []byte) []byte {
	p := frame[frameHeaderLen:]
	if len(p)%6 != 0 || len(p)/6 > maxSettingsPerFrame {
		return frame
	}
	n := len(p) / 6
	settings := make([]http2.Setting, n)
	seen := map[http2.SettingID]int{}
	for i := range n {
		s := http2.Setting{ID: http2.SettingID(binary.BigEndian.Uint16(p[i*6:])), Val: binary.BigEndian.Uint32(p[i*6+2:])}
		if s.Valid() != nil {
			return frame
		}
		settings[i] = s
		seen[s.ID] = i
	}
	if len(seen) == n {
		return frame
	}
	out := append([]byte(nil), frame[:frameHeaderLen]...)
	for i, s := range settings {
		if seen[s.ID] != i {
			continue
		}
		out = binary.BigEndian.AppendUint16(out, uint16(s.ID))
		out = binary.BigEndian.AppendUint32(out, s.Val)
	}
	setLength(out, len(out)-frameHeaderLen)
	return out
}

func setLength(frame []byte, n int) {
	frame[0], frame[1], frame[2] = byte(n>>16), byte(n>>8), byte(n)
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

var _ tlsConn = (*frameFilter)(nil)

// TryWriter gives x/net the connection's writes that do not block, so
// that its serve loop writes itself rather than through its writer
// goroutine (http2.TryWriter); nil if the socket could not be reached.
func (f *frameFilter) TryWriter() http2.TryWriter {
	if f.tw == nil || f.tw.rc == nil {
		return nil
	}
	return f.tw
}
