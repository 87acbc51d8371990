package odinlib

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

const (
	envSocket   = "ODIN_SOCKET"
	envJobID    = "ODIN_JOB_ID"
	envJobName  = "ODIN_JOB_NAME"
	envRunID    = "ODIN_RUN_ID"
	envRunToken = "ODIN_RUN_TOKEN"
	envNode     = "ODIN_NODE"
)

// sink is where records go: the engine of the run, or stderr outside Odin.
type sink interface {
	put(rec record)
	flush() error
}

type stderrSink struct{}

func (stderrSink) put(rec record) { warn(string(rec.json())) }
func (stderrSink) flush() error   { return nil }

type address struct{ socket, runID, token string }

func addressFromEnv() (address, bool) {
	a := address{os.Getenv(envSocket), os.Getenv(envRunID), os.Getenv(envRunToken)}
	return a, a.socket != "" && a.runID != "" && a.token != ""
}

func (a address) path() string { return "/v1/runs/" + escapeSegment(a.runID) + "/records" }

// escapeSegment percent-encodes every byte but A-Z a-z 0-9 _ . - ~ (Python's quote(s, safe="")).
func escapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-' || c == '~' {
			out = append(out, c)
		} else {
			out = append(out, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(out)
}

type outcome int

const (
	delivered outcome = iota
	retry
	busy // the engine answered 5xx: alive, so worth another try soon
	refused
	closed
)

// engineSink POSTs records to the engine, buffering through slowness and outages.
type engineSink struct {
	address  address
	client   *http.Client
	now      func() time.Time
	pending  []record
	retryAt  time.Time
	backoff  time.Duration
	closed   bool
	problem  string
	reported map[string]bool
}

func newEngineSink(a address) *engineSink {
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", a.socket)
		},
		DisableKeepAlives: true,
	}
	return &engineSink{
		address: a, client: &http.Client{Transport: transport}, now: time.Now,
		backoff: retryBackoffFirst, reported: map[string]bool{},
	}
}

func (s *engineSink) put(rec record) {
	if s.closed {
		warn(string(rec.json()))
		return
	}
	s.pending = append(s.pending, rec)
	if !s.now().Before(s.retryAt) {
		s.deliver(s.now().Add(SendTimeout), false)
	}
}

func (s *engineSink) flush() error {
	s.deliver(s.now().Add(ExitFlushBudget), true)
	if len(s.pending) == 0 {
		return nil
	}
	reason := s.problem
	if reason == "" {
		reason = "no time left"
	}
	warn(fmt.Sprintf("the engine did not take %d record(s) (%s); they follow", len(s.pending), reason))
	printRecords(s.pending)
	s.pending = nil
	return ErrUndelivered
}

// deliver sends batches until done or deadline; persist retries an engine that said 5xx.
func (s *engineSink) deliver(deadline time.Time, persist bool) {
	for len(s.pending) > 0 && !s.closed {
		left := deadline.Sub(s.now())
		if left <= 0 {
			return
		}
		if left > SendTimeout {
			left = SendTimeout
		}
		batch := takeBatch(s.pending)
		result := s.send(batch, left)
		if result == busy && persist && deadline.Sub(s.now()) > busyPause {
			time.Sleep(busyPause)
			continue
		}
		if result == retry || result == busy {
			s.retryAt = s.now().Add(s.backoff)
			s.backoff = minDuration(2*s.backoff, retryBackoffMax)
			return
		}
		s.pending = s.pending[len(batch):]
		s.backoff = retryBackoffFirst
		if result != delivered {
			printRecords(batch)
		}
		if result == closed {
			s.closed = true
			printRecords(s.pending)
			s.pending = nil
		}
	}
}

func (s *engineSink) send(batch []record, timeout time.Duration) outcome {
	body, _ := encode(map[string][]record{"records": batch})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://odin"+s.address.path(), bytes.NewReader(body))
	if err != nil {
		s.problem = err.Error()
		return retry
	}
	req.Header.Set("Authorization", "Bearer "+s.address.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.problem = err.Error()
		return retry
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		return delivered
	}
	s.problem = fmt.Sprintf("HTTP %d %s", resp.StatusCode, describeError(resp))
	if resp.StatusCode >= 500 || resp.StatusCode == 408 || resp.StatusCode == 429 {
		return busy
	}
	return s.refuse(resp.StatusCode)
}

func (s *engineSink) refuse(status int) outcome {
	final := status == 401 || status == 403 || status == 404 || status == 410
	if !s.reported[s.problem] {
		s.reported[s.problem] = true
		scope := "not retried"
		if final {
			scope = "no more records will be sent"
		}
		warn(fmt.Sprintf("the engine refused records (%s); %s; they follow", s.problem, scope))
	}
	if final {
		return closed
	}
	return refused
}

// takeBatch is the longest prefix of pending within the per-request bounds (at least one).
func takeBatch(pending []record) []record {
	size := 0
	for i, rec := range pending {
		size += len(rec.json()) + 1
		if i == maxBatchRecords || (i > 0 && size > maxBatchBytes) {
			return pending[:i]
		}
	}
	return pending
}

func describeError(resp *http.Response) string {
	var body struct {
		Error struct{ Type, Message string }
	}
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(io.LimitReader(resp.Body, 4096))
	if json.Unmarshal(raw.Bytes(), &body) == nil && body.Error.Type != "" {
		return body.Error.Type + ": " + body.Error.Message
	}
	if raw.Len() > 200 {
		raw.Truncate(200)
	}
	return raw.String()
}

func printRecords(records []record) {
	for _, rec := range records {
		warn(string(rec.json()))
	}
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
