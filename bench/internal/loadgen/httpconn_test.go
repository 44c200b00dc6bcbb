package loadgen

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoHandler answers the request's query and body.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "text/xml" || r.URL.Path != "/wx/main" {
		http.Error(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"), http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, r.URL.RawQuery+"|"+string(body))
}

// countingServer is an httptest server that counts the connections made to it.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func postAll(t *testing.T, c *keepAliveConn, n int, want func(i int, status int, body string)) {
	t.Helper()
	for i := range n {
		query := "i=" + strings.Repeat("x", i)
		status, answer, err := c.post(context.Background(), time.Now(), []byte(query), []byte("<xml>"+query+"</xml>"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		want(i, status, string(answer))
	}
}

func wantEcho(t *testing.T) func(int, int, string) {
	return func(i, status int, body string) {
		t.Helper()
		query := "i=" + strings.Repeat("x", i)
		if status != 200 || body != query+"|<xml>"+query+"</xml>" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
}

func TestKeepAliveConnReusesItsConnection(t *testing.T) {
	srv, conns := countingServer(t, echoHandler)
	c, err := newKeepAliveConn(srv.URL + "/wx/main")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	postAll(t, c, 50, wantEcho(t))
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 50 requests, want 1", n)
	}
}

func TestKeepAliveConnReconnectsAfterConnectionClose(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		echoHandler(w, r)
	})
	c, err := newKeepAliveConn(srv.URL + "/wx/main")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	postAll(t, c, 10, wantEcho(t))
	if n := conns.Load(); n != 10 {
		t.Errorf("%d connections for 10 requests answered with Connection: close, want 10", n)
	}
}

func TestKeepAliveConnReadsChunkedAnswers(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// Flushing before the end makes net/http send chunks.
		for _, part := range []string{"<xml>", string(body), "</xml>"} {
			_, _ = io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
	})
	c, err := newKeepAliveConn(srv.URL + "/wx/main")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for i := range 5 {
		status, answer, err := c.post(context.Background(), time.Now(), nil, []byte(strings.Repeat("ab", i*1000)))
		if err != nil {
			t.Fatal(err)
		}
		if want := "<xml>" + strings.Repeat("ab", i*1000) + "</xml>"; status != 200 || string(answer) != want {
			t.Fatalf("%d %q, want %q", status, answer, want)
		}
	}
}

// rawServer serves each connection with serve, on a listener of its own;
// it counts the connections.
func rawServer(t *testing.T, serve func(conn net.Conn, r *bufio.Reader)) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conn.Close()
				serve(conn, bufio.NewReader(conn))
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/wx/main", &conns
}

// readRequest reads one request, its body included.
func readRequest(r *bufio.Reader) (*http.Request, string, error) {
	req, err := http.ReadRequest(r)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(req.Body)
	return req, string(body), err
}

// A server that closes a keep-alive connection without saying so, after
// one answer: the next request finds it closed and goes on a new one.
func TestKeepAliveConnRetriesWhenTheServerClosedAnIdleConnection(t *testing.T) {
	url, conns := rawServer(t, func(conn net.Conn, r *bufio.Reader) {
		req, body, err := readRequest(r)
		if err != nil {
			return
		}
		answer := req.URL.RawQuery + "|" + body
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(answer))+"\r\n\r\n"+answer)
	})
	c, err := newKeepAliveConn(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	postAll(t, c, 5, func(i, status int, body string) {
		// Let the server's close arrive before the next request.
		time.Sleep(10 * time.Millisecond)
		wantEcho(t)(i, status, body)
	})
	if n := conns.Load(); n != 5 {
		t.Errorf("%d connections, want 5", n)
	}
}

func TestKeepAliveConnAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  string
		status  int
		body    string
		wantErr string
	}{
		{name: "chunked_with_extension_and_trailer", status: 200, body: "hello, world",
			answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: 1\r\n\r\n"},
		{name: "body_up_to_the_close", status: 200, body: "until the end",
			answer: "HTTP/1.0 200 OK\r\n\r\nuntil the end"},
		{name: "interim_answer", status: 200, body: "ok",
			answer: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{name: "lower_case_header_names", status: 500, body: "boom",
			answer: "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\nboom"},
		{name: "no_content", status: 204, body: "",
			answer: "HTTP/1.1 204 No Content\r\n\r\n"},
		{name: "switching_protocols", wantErr: "switched protocols",
			answer: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"},
		{name: "gzip", wantErr: `Transfer-Encoding "gzip" is not supported`,
			answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{name: "not_http", wantErr: "not HTTP/1.x",
			answer: "SSH-2.0-OpenSSH\r\n\r\n"},
		{name: "bad_status", wantErr: "bad status code",
			answer: "HTTP/1.1 2000 OK\r\n\r\n"},
		{name: "bad_length", wantErr: "bad Content-Length",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{name: "conflicting_lengths", wantErr: "bad Content-Length",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"},
		{name: "huge_length", wantErr: "over the",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n"},
		{name: "cut_short", wantErr: "unexpected EOF",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
		{name: "bad_chunk", wantErr: "bad chunk size",
			answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{name: "chunk_cut_short", wantErr: "unexpected EOF",
			answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"},
		{name: "closed_at_once", wantErr: "EOF", answer: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := rawServer(t, func(conn net.Conn, r *bufio.Reader) {
				if _, _, err := readRequest(r); err == nil {
					_, _ = io.WriteString(conn, tc.answer)
				}
			})
			c, err := newKeepAliveConn(url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			status, body, err := c.post(context.Background(), time.Now(), []byte("a=b"), []byte("<xml/>"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || status != tc.status || string(body) != tc.body {
				t.Fatalf("%d %q %v, want %d %q", status, body, err, tc.status, tc.body)
			}
		})
	}
}

func TestKeepAliveConnErrors(t *testing.T) {
	if _, err := newKeepAliveConn("https://127.0.0.1/wx/main"); err == nil || !strings.Contains(err.Error(), "plain http only") {
		t.Errorf("https: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(echoHandler))
	url := srv.URL
	srv.Close()
	c, err := newKeepAliveConn(url + "/wx/main")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.post(context.Background(), time.Now(), nil, []byte("x")); err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Errorf("closed server: %v", err)
	}
}

// A stopped run ends the exchange in progress at once, and every later one.
func TestKeepAliveConnInterrupt(t *testing.T) {
	url, _ := rawServer(t, func(conn net.Conn, r *bufio.Reader) {
		_, _ = io.Copy(io.Discard, r) // never answers
	})
	c, err := newKeepAliveConn(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer context.AfterFunc(ctx, c.interrupt)()
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, _, err := c.post(ctx, time.Now(), nil, []byte("x")); err == nil {
		t.Fatal("no error from an interrupted exchange")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the interrupted exchange took %v", d)
	}
	if _, _, err := c.post(ctx, time.Now(), nil, []byte("x")); err == nil {
		t.Fatal("no error after the interruption")
	}
}
