package cli

import (
	"net/http"
	"testing"
)

// Concurrent sends to one API host reuse their connections instead of
// opening one per call beyond Go's default of 2 idle per host.
func TestWeChatHTTPClientKeepsAConnectionPerWorker(t *testing.T) {
	t.Parallel()
	c := wechatHTTPClient(50)
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T, want *http.Transport", c.Transport)
	}
	if tr.MaxIdleConnsPerHost < 50 || tr.MaxIdleConns < tr.MaxIdleConnsPerHost {
		t.Errorf("idle connections: %d per host, %d in all; want at least 50 per host", tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
	}
	if tr.Proxy == nil || c.Timeout <= 0 {
		t.Errorf("proxy from the environment and a timeout are expected as in the default client")
	}
}
