package odinlib

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

const (
	typeWatch     = "watch"
	typeCondition = "condition"
	typeResult    = "result"
)

// record is one statement of the job; Value is already plain JSON.
type record struct {
	Seq   int             `json:"seq"`
	Ts    float64         `json:"ts"`
	Type  string          `json:"type"`
	Desc  string          `json:"desc"`
	Value json.RawMessage `json:"value"`
}

// encode is the one JSON encoding used for sizes and for the wire: compact,
// UTF-8, no HTML escaping (the same bytes the other SDKs produce).
func encode(value any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(value); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// plainJSON is value as JSON, or the JSON string of fmt's %v when JSON cannot hold it.
func plainJSON(value any) json.RawMessage {
	data, err := encode(value)
	if err != nil {
		data, _ = encode(fmt.Sprintf("%v", value))
	}
	return data
}

func (r record) json() []byte {
	data, _ := encode(r)
	return data
}

// recorder numbers records, enforces the bounds and hands records to the sink, under one lock.
type recorder struct {
	mu   sync.Mutex
	last int
	sink sink
}

func newRecorder(s sink) *recorder { return &recorder{sink: s} }

func (r *recorder) record(kind, desc string, value any, strict bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, err := r.make(kind, desc, value)
	if err != nil {
		if strict {
			return err
		}
		warn(err.Error()[len(stderrPrefix):] + "; dropped")
		return nil
	}
	r.sink.put(rec)
	return nil
}

func (r *recorder) make(kind, desc string, value any) (record, error) {
	if r.last >= MaxRecordsPerRun {
		detail := fmt.Sprintf("%s %.80q not recorded: too many records in one run", kind, desc)
		return record{}, &LimitError{"MAX_RECORDS_PER_RUN", MaxRecordsPerRun, detail}
	}
	now := float64(time.Now().UnixNano()) / 1e9
	rec := record{Seq: r.last + 1, Ts: now, Type: kind, Desc: desc, Value: plainJSON(value)}
	if size := len(rec.json()); size > MaxRecordBytes {
		detail := fmt.Sprintf("record %.80q is %d bytes of JSON", desc, size)
		return record{}, &LimitError{"MAX_RECORD_BYTES", MaxRecordBytes, detail}
	}
	r.last = rec.Seq
	return rec, nil
}

func (r *recorder) flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sink.flush()
}
