// Package odinlib is the Go SDK of Odin, used inside jobs.
//
//	odin, err := odinlib.Setup("job.yml")
//	odin.Watch("url fetched", url)
//	if odin.Condition("url not empty", url != "") { ... }
//	odin.Result("done", 0) // records, flushes and exits with status 0
//
// Inside a run the engine sets ODIN_SOCKET, ODIN_RUN_ID and ODIN_RUN_TOKEN and
// records are POSTed to it over that Unix socket; outside Odin each record is
// printed to stderr as one JSON line prefixed "odin: ".
//
// What must hold: a call never blocks the job longer than SendTimeout; records
// the engine cannot take yet wait in a bounded buffer and are retried on later
// calls (after a back-off) and in Result and Flush; a record the engine refuses
// (4xx) is not retried; a record finally not delivered is printed to stderr.
// Standard library only.
package odinlib

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Bounds (mirrors of the engine's table) and timings.
const (
	MaxRecordBytes    = 64 * 1024
	MaxRecordsPerRun  = 1000
	SendTimeout       = 500 * time.Millisecond
	ExitFlushBudget   = time.Second
	retryBackoffFirst = time.Second
	retryBackoffMax   = 30 * time.Second
	busyPause         = 100 * time.Millisecond
	maxBatchRecords   = 100
	maxBatchBytes     = 1024 * 1024
	stderrPrefix      = "odin: "
)

// ErrLimit matches (with errors.Is) every *LimitError.
var ErrLimit = errors.New("odin: a record bound was crossed")

// ErrUndelivered is returned by Flush when some records could not be delivered.
var ErrUndelivered = errors.New("odin: records not delivered to the engine")

// LimitError says which bound a record crossed.
type LimitError struct {
	Bound  string // "MAX_RECORD_BYTES" or "MAX_RECORDS_PER_RUN"
	Limit  int
	Detail string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("odin: %s, more than %s (%d)", e.Detail, e.Bound, e.Limit)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// Odin is a job's handle; all handles of one process share one numbering and buffer.
type Odin struct {
	Config  string
	JobID   string
	JobName string
	RunID   string
	Node    string
	Inside  bool
	rec     *recorder
}

// Setup reads the job's id and name from the YAML file config (relative to the
// current directory); inside a run the engine's environment wins and a missing
// file is not an error. Outside Odin a missing file is returned as an error
// together with a usable *Odin (which prints records to stderr), so that
// `odin, _ := odinlib.Setup(...)` never crashes the job.
func Setup(config string) (*Odin, error) {
	rec := processRecorder()
	o := &Odin{Config: config, RunID: os.Getenv(envRunID), Node: os.Getenv(envNode), rec: rec}
	_, o.Inside = rec.sink.(*engineSink)
	fields, err := readJobFile(config)
	if err != nil && o.Inside {
		err = nil
	}
	o.JobID = firstNonEmpty(os.Getenv(envJobID), fields["id"])
	o.JobName = firstNonEmpty(os.Getenv(envJobName), fields["name"])
	return o, err
}

// Watch records value (any JSON-able value; others as fmt's %v). It returns a
// *LimitError past MaxRecordBytes or MaxRecordsPerRun; delivery problems are
// never returned (records are buffered).
func (o *Odin) Watch(desc string, value any) error {
	return o.rec.record(typeWatch, desc, value, true)
}

// Condition records ok and returns it, so that `if odin.Condition(...)` works.
func (o *Odin) Condition(desc string, ok bool) bool {
	_ = o.rec.record(typeCondition, desc, ok, false)
	return ok
}

// Result records the job's result (0 success, 1 failure), delivers every
// buffered record and exits the process with status. Deferred functions do not
// run (os.Exit).
func (o *Odin) Result(desc string, status int) {
	_ = o.rec.record(typeResult, desc, status, false)
	_ = o.rec.flush()
	os.Exit(status)
}

// Flush delivers every buffered record now (within ExitFlushBudget); what the
// engine does not take is printed to stderr and ErrUndelivered returned.
// Defer it in main when the job may end without Result.
func (o *Odin) Flush() error {
	return o.rec.flush()
}

var (
	sharedMu  sync.Mutex
	sharedRec *recorder
)

func processRecorder() *recorder {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedRec == nil {
		sharedRec = newRecorder(sinkFromEnv())
	}
	return sharedRec
}

func sinkFromEnv() sink {
	address, ok := addressFromEnv()
	if !ok {
		return stderrSink{}
	}
	return newEngineSink(address)
}

func firstNonEmpty(values ...string) string {
	for _, value := range values {
		if value != "" {
			return value
		}
	}
	return ""
}

func warn(message string) {
	fmt.Fprintln(os.Stderr, stderrPrefix+message)
}
