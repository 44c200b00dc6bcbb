package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// maxAnswer bounds an answer's body: a passive reply is a few hundred bytes.
const maxAnswer = 4 << 20

// requestTimeout bounds one exchange, as NewClient's Timeout does for the
// burst: well above WeChat's 5 s. The connection's deadline is moved only
// when less than requestTimeout-deadlineSlack is left, not at every
// request: an exchange may take between 14 and 15 s.
const (
	requestTimeout = 15 * time.Second
	deadlineSlack  = time.Second
)

// keepAliveConn is a sustained worker's own HTTP/1.1 connection to the
// callback URL. It writes each POST itself and reads the answer with a
// bufio.Reader into buffers it keeps: net/http's client costs a goroutine
// hand-off per request and more CPU than the crypto of a push, which would
// make the load generator, not the server, the limit. It is not safe for
// concurrent use, except interrupt.
type keepAliveConn struct {
	addr string // host:port to dial
	host string // the Host header
	path string // the request target before the query

	dialer net.Dialer
	sock   socketReader
	r      *bufio.Reader // reads sock
	req    []byte
	body   []byte

	mu          sync.Mutex // guards nc and interrupted against interrupt
	nc          net.Conn
	interrupted bool
	reused      bool      // nc has carried a whole exchange
	deadline    time.Time // nc's read and write deadline
}

func newKeepAliveConn(callbackURL string) (*keepAliveConn, error) {
	u, err := url.Parse(callbackURL)
	if err != nil {
		return nil, fmt.Errorf("callback URL %q: %w", callbackURL, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("callback URL %q: the sustained mode's client speaks plain http only, not %s", callbackURL, u.Scheme)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return &keepAliveConn{
		addr:   net.JoinHostPort(u.Hostname(), port),
		host:   u.Host,
		path:   path,
		dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
	}, nil
}

// post sends body to the callback URL with the given query string at time
// now and returns the answer's status and body; the body is valid until the
// next call. A connection the server closed while it was idle is replaced
// once, as net/http does, when nothing of the answer had arrived.
func (c *keepAliveConn) post(ctx context.Context, now time.Time, query, body []byte) (int, []byte, error) {
	c.req = c.appendRequest(c.req[:0], query, body)
	status, answer, retry, err := c.exchange(ctx, now)
	if retry {
		status, answer, _, err = c.exchange(ctx, now)
	}
	return status, answer, err
}

func (c *keepAliveConn) appendRequest(dst, query, body []byte) []byte {
	dst = append(dst, "POST "...)
	dst = append(dst, c.path...)
	if len(query) > 0 {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, c.host...)
	dst = append(dst, "\r\nContent-Type: text/xml\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// exchange writes the request and reads the answer on the current
// connection, dialing one when there is none. retry reports that a reused
// connection turned out closed by the server before any of the answer
// arrived: it had closed it while idle.
func (c *keepAliveConn) exchange(ctx context.Context, now time.Time) (status int, answer []byte, retry bool, err error) {
	if c.nc == nil {
		if err := c.dial(ctx); err != nil {
			return 0, nil, false, err
		}
	}
	reused := c.reused
	if c.deadline.Sub(now) < requestTimeout-deadlineSlack {
		c.deadline = now.Add(requestTimeout)
		if err := c.nc.SetDeadline(c.deadline); err != nil {
			c.drop()
			return 0, nil, false, fmt.Errorf("POST %s: %w", c.path, err)
		}
	}
	if c.r.Buffered() > 0 {
		c.drop()
		return 0, nil, false, fmt.Errorf("POST %s: %d bytes arrived after the previous answer", c.path, c.r.Buffered())
	}
	// The socket reader writes the request when the answer is first read.
	c.sock.pending = c.req
	status, answer, keepAlive, started, err := c.readAnswer()
	if err != nil {
		c.drop()
		return 0, nil, reused && !started && closedByPeer(err), fmt.Errorf("POST %s: answer: %w", c.path, err)
	}
	c.reused = true
	if !keepAlive {
		c.drop()
	}
	return status, answer, false, nil
}

func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *keepAliveConn) dial(ctx context.Context) error {
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.addr, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.interrupted {
		nc.Close()
		return fmt.Errorf("connect to %s: %w", c.addr, context.Canceled)
	}
	if err := c.sock.reset(nc); err != nil {
		nc.Close()
		return fmt.Errorf("connect to %s: %w", c.addr, err)
	}
	c.nc, c.reused, c.deadline = nc, false, time.Time{}
	if c.r == nil {
		c.r = bufio.NewReaderSize(&c.sock, 4096)
	} else {
		c.r.Reset(&c.sock)
	}
	return nil
}

// drop closes the current connection; the next exchange dials anew.
func (c *keepAliveConn) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// interrupt ends the exchange in progress, if any, and every later one:
// it is called when the run is stopped.
func (c *keepAliveConn) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.interrupted = true
	if c.nc != nil {
		c.nc.Close()
	}
}

// close releases the connection at the end of a level.
func (c *keepAliveConn) close() { c.drop() }

// readAnswer reads one HTTP/1.x response: status line, headers, and a body
// delimited by Content-Length, chunked encoding or the end of the
// connection. started reports whether any of it arrived.
func (c *keepAliveConn) readAnswer() (status int, body []byte, keepAlive, started bool, err error) {
	var h answerHeader
	for {
		line, err := c.readLine()
		if err != nil {
			return 0, nil, false, started, err
		}
		started = true
		h, err = c.readHeader(line)
		if err != nil {
			return 0, nil, false, true, err
		}
		if h.status == http.StatusSwitchingProtocols {
			return 0, nil, false, true, errors.New("the server switched protocols")
		}
		// An interim answer (100 Continue and the like) precedes the real one.
		if h.status >= 200 {
			break
		}
	}
	c.body = c.body[:0]
	switch {
	case h.status == http.StatusNoContent || h.status == http.StatusNotModified:
	case h.chunked:
		err = c.readChunked()
	case h.contentLength >= 0:
		err = c.readBody(int(h.contentLength))
	default:
		// Neither length nor chunks: the body ends with the connection.
		h.close = true
		err = c.readToEOF()
	}
	if err != nil {
		return 0, nil, false, true, err
	}
	return h.status, c.body, !h.close, true, nil
}

type answerHeader struct {
	status        int
	contentLength int64 // -1: not given
	chunked       bool
	close         bool // the server closes the connection after this answer
}

// readHeader parses the status line and reads the header fields after it.
func (c *keepAliveConn) readHeader(statusLine []byte) (answerHeader, error) {
	h := answerHeader{contentLength: -1}
	proto, rest, _ := bytes.Cut(statusLine, []byte(" "))
	code, _, _ := bytes.Cut(rest, []byte(" "))
	switch {
	case string(proto) == "HTTP/1.1":
	case string(proto) == "HTTP/1.0":
		h.close = true // unless it says keep-alive
	default:
		return h, fmt.Errorf("status line %.100q is not HTTP/1.x", statusLine)
	}
	status, ok := parseDecimal(code)
	if !ok || len(code) != 3 || status < 100 {
		return h, fmt.Errorf("status line %.100q: bad status code", statusLine)
	}
	h.status = int(status)
	for {
		line, err := c.readLine()
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			return h, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, fmt.Errorf("header line %.100q has no colon", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := parseDecimal(value)
			if !ok || (h.contentLength >= 0 && n != h.contentLength) {
				return h, fmt.Errorf("bad Content-Length %.100q", value)
			}
			if n > maxAnswer {
				return h, fmt.Errorf("an answer of %d bytes is over the %d-byte limit", n, maxAnswer)
			}
			h.contentLength = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return h, fmt.Errorf("Transfer-Encoding %.100q is not supported (chunked only)", value)
			}
			h.chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			for _, opt := range bytes.Split(value, []byte(",")) {
				opt = bytes.TrimSpace(opt)
				switch {
				case bytes.EqualFold(opt, []byte("close")):
					h.close = true
				case bytes.EqualFold(opt, []byte("keep-alive")) && string(proto) == "HTTP/1.0":
					h.close = false
				}
			}
		}
	}
}

// readLine returns the next line without its CRLF (or LF); it is valid
// until the next read.
func (c *keepAliveConn) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("a header line is longer than %d bytes", c.r.Size())
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readBody appends n bytes of body.
func (c *keepAliveConn) readBody(n int) error {
	if len(c.body)+n > maxAnswer {
		return fmt.Errorf("the answer is over the %d-byte limit", maxAnswer)
	}
	start := len(c.body)
	c.body = slices.Grow(c.body, n)
	if _, err := io.ReadFull(c.r, c.body[start:start+n]); err != nil {
		return unexpectedEOF(err)
	}
	c.body = c.body[:start+n]
	return nil
}

func (c *keepAliveConn) readChunked() error {
	for {
		line, err := c.readLine()
		if err != nil {
			return fmt.Errorf("chunk size: %w", unexpectedEOF(err))
		}
		sizeText, _, _ := bytes.Cut(line, []byte(";")) // chunk extensions are ignored
		size, err := strconv.ParseUint(string(bytes.TrimSpace(sizeText)), 16, 31)
		if err != nil {
			return fmt.Errorf("bad chunk size %.100q", line)
		}
		if size == 0 {
			// Trailer fields, up to an empty line.
			for {
				line, err := c.readLine()
				if err != nil {
					return fmt.Errorf("chunked trailer: %w", unexpectedEOF(err))
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if err := c.readBody(int(size)); err != nil {
			return err
		}
		line, err = c.readLine()
		if err != nil {
			return fmt.Errorf("end of chunk: %w", unexpectedEOF(err))
		}
		if len(line) != 0 {
			return fmt.Errorf("chunk of %d bytes followed by %.100q, not CRLF", size, line)
		}
	}
}

func (c *keepAliveConn) readToEOF() error {
	for {
		if len(c.body) > maxAnswer {
			return fmt.Errorf("the answer is over the %d-byte limit", maxAnswer)
		}
		c.body = slices.Grow(c.body, 4096)
		n, err := c.r.Read(c.body[len(c.body):cap(c.body)])
		c.body = c.body[:len(c.body)+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// unexpectedEOF turns the end of the connection in the middle of an answer
// into io.ErrUnexpectedEOF: the server did not close an idle connection,
// it cut an answer short.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseDecimal reads a non-negative decimal number of up to 18 digits.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
