package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxSourceBody bounds a data source's answer.
const maxSourceBody = 1 << 20

// DefaultSourceConcurrency is how many distinct URLs a run fetches at once.
const DefaultSourceConcurrency = 8

// request is one call of an HTTP source, rendered for a recipient.
type request struct {
	url     string
	shown   string // url with secrets masked
	headers http.Header
}

// key identifies the answer a request gets: the same URL and headers get
// the same answer within a run.
func (r request) key() string {
	var b strings.Builder
	b.WriteString(r.url)
	names := make([]string, 0, len(r.headers))
	for k := range r.headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.WriteString("\n" + k + ": " + r.headers.Get(k))
	}
	return b.String()
}

// answer is the outcome of one distinct request.
type answer struct {
	body any
	err  error
}

// fetcher calls an HTTP source once per distinct request of a run.
type fetcher struct {
	client      *http.Client
	src         *Source
	concurrency int
	calls       atomic.Int64
	backoff     time.Duration
}

// render builds the request of one recipient.
func (p *program) render(rc *Recipient) (request, error) {
	u, err := execute(p.url, rc)
	if err != nil {
		return request{}, err
	}
	shown, _ := execute(p.urlShown, rc)
	parsed, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return request{}, fmt.Errorf("source.url renders to %q, which is not an http(s) URL — source.url 不是有效的 URL", shown)
	}
	r := request{url: parsed.String(), shown: shown, headers: http.Header{}}
	for name, ts := range p.headers {
		v, err := execute(ts[0], rc)
		if err != nil {
			return request{}, err
		}
		r.headers.Set(name, v)
	}
	return r, nil
}

// fetchAll calls each distinct request once, a few at a time, and returns
// the answers by key.
func (f *fetcher) fetchAll(ctx context.Context, reqs map[string]request) map[string]answer {
	out := make(map[string]answer, len(reqs))
	var mu sync.Mutex
	sem := make(chan struct{}, max(f.concurrency, 1))
	var wg sync.WaitGroup
	for key, r := range reqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body, err := f.fetch(ctx, r)
			mu.Lock()
			out[key] = answer{body: body, err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// retryable marks a failure worth another attempt.
type retryable struct{ error }

func (e retryable) Unwrap() error { return e.error }

// fetch calls one request with retries and checks the answer.
func (f *fetcher) fetch(ctx context.Context, r request) (any, error) {
	retries := DefaultSourceRetries
	if f.src.Retries != nil {
		retries = *f.src.Retries
	}
	timeout := time.Duration(f.src.Timeout)
	if timeout <= 0 {
		timeout = DefaultSourceTimeout
	}
	var err error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			wait := min(f.backoff<<(attempt-1), 2*time.Second)
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("GET %s: %w", r.shown, ctx.Err())
			case <-time.After(wait):
			}
		}
		var body any
		body, err = f.once(ctx, r, timeout)
		if err == nil {
			if cerr := checkExpect(body, f.src.Expect); cerr != nil {
				return nil, fmt.Errorf("GET %s: %w", r.shown, cerr)
			}
			return body, nil
		}
		var re retryable
		if !errors.As(err, &re) || ctx.Err() != nil {
			break
		}
	}
	if retries > 0 {
		return nil, fmt.Errorf("GET %s: %w (after %d attempts)", r.shown, err, retries+1)
	}
	return nil, fmt.Errorf("GET %s: %w", r.shown, err)
}

// once makes one call. Its errors never contain the URL: it may carry a
// secret.
func (f *fetcher) once(ctx context.Context, r request, timeout time.Duration) (any, error) {
	f.calls.Add(1)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, errors.New("the URL is not valid")
	}
	req.Header = r.headers.Clone()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "wxgate-schedule")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // *url.Error repeats the URL, secrets included
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, retryable{fmt.Errorf("no answer within %s", timeout)}
		}
		return nil, retryable{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSourceBody+1))
	if err != nil {
		return nil, retryable{fmt.Errorf("reading the answer: %w", err)}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return nil, retryable{fmt.Errorf("HTTP %d", resp.StatusCode)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if len(data) > maxSourceBody {
		return nil, fmt.Errorf("the answer is larger than %d KiB", maxSourceBody>>10)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var body any
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("the answer is not JSON: %v", err)
	}
	return body, nil
}

// checkExpect compares the answer's paths with the values they must have.
func checkExpect(body any, expect map[string]string) error {
	paths := make([]string, 0, len(expect))
	for p := range expect {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		v, err := jsonGet(body, p)
		if err != nil {
			return fmt.Errorf("expected %s = %q, but the answer has no %s", p, expect[p], p)
		}
		if got := toString(v); got != expect[p] {
			return fmt.Errorf("%s is %q, want %q", p, got, expect[p])
		}
	}
	return nil
}
