package odinlib

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// captureSink keeps records instead of sending them, to test the recorder alone.
type captureSink struct{ records []record }

func (c *captureSink) put(rec record) { c.records = append(c.records, rec) }
func (c *captureSink) flush() error   { return nil }

func TestRecordsAreNumberedFromOne(t *testing.T) {
	sink := &captureSink{}
	o := &Odin{rec: newRecorder(sink)}
	if err := o.Watch("a", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if !o.Condition("c", true) || o.Condition("d", false) {
		t.Fatal("Condition must return its argument")
	}
	got := []string{}
	for _, rec := range sink.records {
		got = append(got, rec.Type+":"+string(rec.Value))
	}
	want := "watch:{\"n\":1} condition:true condition:false"
	if strings.Join(got, " ") != want || sink.records[2].Seq != 3 {
		t.Fatalf("got %v", got)
	}
}

type odd struct{ C chan int }

func (odd) String() string { return "odd-value" }

func TestNonJSONValuesBecomeStrings(t *testing.T) {
	if got := string(plainJSON(odd{})); got != `"odd-value"` {
		t.Fatalf("got %s", got)
	}
	if got := string(plainJSON("<a&b>")); got != `"<a&b>"` {
		t.Fatalf("HTML must not be escaped, got %s", got)
	}
}

func TestLimits(t *testing.T) {
	sink := &captureSink{}
	o := &Odin{rec: newRecorder(sink)}
	err := o.Watch("big", strings.Repeat("x", MaxRecordBytes))
	var limit *LimitError
	if !errors.As(err, &limit) || limit.Bound != "MAX_RECORD_BYTES" || !errors.Is(err, ErrLimit) {
		t.Fatalf("want a MAX_RECORD_BYTES error, got %v", err)
	}
	for i := 0; i < MaxRecordsPerRun; i++ {
		if err := o.Watch("n", i); err != nil {
			t.Fatal(err)
		}
	}
	err = o.Watch("one too many", 0)
	if !errors.As(err, &limit) || limit.Bound != "MAX_RECORDS_PER_RUN" {
		t.Fatalf("want a MAX_RECORDS_PER_RUN error, got %v", err)
	}
	if !o.Condition("still answers", true) || len(sink.records) != MaxRecordsPerRun {
		t.Fatal("past the bound Condition returns its value and records nothing")
	}
}

func TestParseJobFields(t *testing.T) {
	text := "provider:\n  name: other\njob:  # the job\n  id: \"6d73#41\" # c\n" +
		"  name: 'it''s' \n  nested:\n    id: no\nafter:\n  id: no\n"
	fields, err := parseJobFields(text)
	if err != nil || fields["id"] != "6d73#41" || fields["name"] != "it's" {
		t.Fatalf("got %v %v", fields, err)
	}
	if _, err := readJobFile(filepath.Join(t.TempDir(), "missing.yml")); err == nil {
		t.Fatal("a missing file must be an error")
	}
}

func TestEscapeSegment(t *testing.T) {
	if got := escapeSegment("a-b_c.d~e@2024 1/2:3"); got != "a-b_c.d~e%402024%201%2F2%3A3" {
		t.Fatalf("got %s", got)
	}
}

// fakeEngine answers with the given statuses in turn (then 200) and keeps what it got.
type fakeEngine struct {
	mu       sync.Mutex
	statuses []int
	bodies   []string
	auth     []string
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, r.URL.EscapedPath()+" "+string(body))
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	status := http.StatusOK
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error": {"type": "PermissionDenied", "message": "no"}}`))
}

func serve(t *testing.T, engine http.Handler) string {
	path := filepath.Join(t.TempDir(), "engine.sock")
	listener, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{Handler: engine}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(func() { _ = server.Close() })
	return path
}

func TestEngineSinkRetriesAfterServerError(t *testing.T) {
	engine := &fakeEngine{statuses: []int{503}}
	sink := newEngineSink(address{serve(t, engine), "job@1", "tok"})
	rec := newRecorder(sink)
	_ = rec.record(typeWatch, "a", 1, true)
	_ = rec.record(typeWatch, "b", 2, true) // within the back-off: buffered
	if len(sink.pending) != 2 {
		t.Fatalf("want 2 buffered records, have %d", len(sink.pending))
	}
	if err := rec.flush(); err != nil {
		t.Fatal(err)
	}
	var sent struct{ Records []record }
	last := engine.bodies[len(engine.bodies)-1]
	path, body, _ := strings.Cut(last, " ")
	if err := json.Unmarshal([]byte(body), &sent); err != nil || len(sent.Records) != 2 {
		t.Fatalf("want both records in one batch, got %s", last)
	}
	if path != "/v1/runs/job%401/records" || engine.auth[0] != "Bearer tok" {
		t.Fatalf("bad request %s %s", path, engine.auth[0])
	}
}

func TestEngineSinkStopsAfterRefusal(t *testing.T) {
	engine := &fakeEngine{statuses: []int{401}}
	sink := newEngineSink(address{serve(t, engine), "r", "bad"})
	rec := newRecorder(sink)
	_ = rec.record(typeWatch, "a", 1, true)
	_ = rec.record(typeWatch, "b", 2, true)
	if err := rec.flush(); err != nil || len(engine.bodies) != 1 || !sink.closed {
		t.Fatalf("a 401 must close the sink after one request (%d sent)", len(engine.bodies))
	}
}

func TestEngineSinkDoesNotWaitForASlowEngine(t *testing.T) {
	release := make(chan struct{})
	slow := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release })
	sink := newEngineSink(address{serve(t, slow), "r", "t"})
	defer close(release)
	start := time.Now()
	rec := newRecorder(sink)
	for i := 0; i < 5; i++ {
		_ = rec.record(typeWatch, "n", i, true)
	}
	if elapsed := time.Since(start); elapsed > 2*SendTimeout {
		t.Fatalf("five calls took %v", elapsed)
	}
	if len(sink.pending) != 5 {
		t.Fatalf("want 5 buffered records, have %d", len(sink.pending))
	}
}
