'use strict';
// Sending records to the engine of the run over its Unix socket.
//
// What must hold: no call blocks the job (records are sent asynchronously, one
// request in flight at a time, so they arrive in order); a request never takes
// longer than SEND_TIMEOUT_MS; records the engine cannot take yet wait in the
// buffer and are retried after a back-off and, synchronously, in result() and
// at exit (a child Node process does the POST: Node has no synchronous socket
// I/O, see sync-flush.js); a record the engine refuses (4xx) is not retried; a record finally not
// delivered is printed to stderr so that it still lands in the run's output.

const http = require('http');
const { recordJson, warn } = require('./records');

const SEND_TIMEOUT_MS = 500;
const EXIT_FLUSH_BUDGET_MS = 1000;
const RETRY_BACKOFF_FIRST_MS = 1000;
const RETRY_BACKOFF_MAX_MS = 30000;
const BUSY_PAUSE_MS = 100;
const MAX_BATCH_RECORDS = 100;
const MAX_BATCH_BYTES = 1024 * 1024;
const CLOSING_STATUSES = new Set([401, 403, 404, 410]);

// Python's quote(s, safe=''): everything but A-Z a-z 0-9 _ . - ~ is escaped.
function escapeSegment(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function addressFromEnv(env) {
  const address = { socket: env.ODIN_SOCKET, runId: env.ODIN_RUN_ID, token: env.ODIN_RUN_TOKEN };
  if (!address.socket || !address.runId || !address.token) return null;
  address.path = `/v1/runs/${escapeSegment(address.runId)}/records`;
  return address;
}

// The longest prefix of records within the per-request bounds (at least one).
function takeBatch(records) {
  let size = 0;
  let count = 0;
  for (const record of records.slice(0, MAX_BATCH_RECORDS)) {
    size += Buffer.byteLength(recordJson(record), 'utf8') + 1;
    if (count && size > MAX_BATCH_BYTES) break;
    count++;
  }
  return records.slice(0, count);
}

function describeError(status, body) {
  try {
    const error = JSON.parse(body).error;
    if (error && error.type) return `HTTP ${status} ${error.type}: ${error.message}`;
  } catch (err) {
    // not the engine's error shape
  }
  return `HTTP ${status} ${body.slice(0, 200)}`;
}

// One POST; resolves to {outcome, problem} and never rejects.
function post(address, records, timeoutMs) {
  const body = Buffer.from(JSON.stringify({ records }), 'utf8');
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(result);
    };
    const request = http.request({
      socketPath: address.socket, path: address.path, method: 'POST', agent: false,
      headers: {
        Host: 'odin', Authorization: `Bearer ${address.token}`,
        'Content-Type': 'application/json', 'Content-Length': body.length, Connection: 'close',
      },
    }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('error', (err) => settle({ outcome: 'retry', problem: err.message }));
      response.on('end', () => settle(classify(response.statusCode, Buffer.concat(chunks).toString('utf8'))));
    });
    const timer = setTimeout(() => settle({ outcome: 'retry', problem: 'the engine did not answer in time' }), timeoutMs);
    request.on('error', (err) => settle({ outcome: 'retry', problem: `${err.code || ''} ${err.message}`.trim() }));
    request.end(body);
  });
}

function classify(status, body) {
  if (status < 300) return { outcome: 'delivered', problem: '' };
  const problem = describeError(status, body);
  if (status >= 500 || status === 408 || status === 429) return { outcome: 'busy', problem };
  return { outcome: CLOSING_STATUSES.has(status) ? 'closed' : 'refused', problem };
}

// Send records batch by batch within budgetMs, asking again (after a pause) an engine that
// answered 5xx; the outcome of each batch tried, in order.
async function deliverBatches(address, records, budgetMs) {
  const deadline = Date.now() + budgetMs;
  const outcomes = [];
  let rest = records;
  while (rest.length) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const batch = takeBatch(rest);
    const result = await post(address, batch, Math.min(left, SEND_TIMEOUT_MS));
    if (result.outcome === 'busy' && deadline - Date.now() > BUSY_PAUSE_MS) {
      await new Promise((resolve) => setTimeout(resolve, BUSY_PAUSE_MS));
      continue;
    }
    outcomes.push({ n: batch.length, ...result });
    if (result.outcome !== 'delivered' && result.outcome !== 'refused') break;
    rest = rest.slice(batch.length);
  }
  return outcomes;
}

class StderrSink {
  put(record) {
    warn(recordJson(record));
  }

  flushSync() {
    return true;
  }
}

class EngineSink {
  constructor(address) {
    this.address = address;
    this.pending = [];
    this.inflight = 0;
    this.retryAt = 0;
    this.backoff = RETRY_BACKOFF_FIRST_MS;
    this.closed = false;
    this.finished = false;
    this.problem = '';
    this.reported = new Set();
    this.timer = null;
    this.flusher = null;
  }

  put(record) {
    if (this.closed || this.finished) {
      warn(recordJson(record));
      return;
    }
    this.pending.push(record);
    this.syncFlusher().start();
    this.pump();
  }

  pump() {
    if (this.finished || this.closed || this.inflight || !this.pending.length) return;
    const wait = this.retryAt - Date.now();
    if (wait > 0) {
      if (!this.timer) {
        this.timer = setTimeout(() => { this.timer = null; this.pump(); }, wait);
        this.timer.unref();
      }
      return;
    }
    const batch = takeBatch(this.pending);
    this.inflight = batch.length;
    post(this.address, batch, SEND_TIMEOUT_MS).then((result) => {
      this.inflight = 0;
      if (this.finished) return;
      this.apply(batch, result);
      this.pump();
    });
  }

  // Settle one batch; records are matched by seq, since a synchronous flush may have
  // settled them already while their asynchronous request was still in flight.
  apply(batch, { outcome, problem }) {
    if (outcome === 'retry' || outcome === 'busy') {
      this.problem = problem;
      this.retryAt = Date.now() + this.backoff;
      this.backoff = Math.min(this.backoff * 2, RETRY_BACKOFF_MAX_MS);
      return;
    }
    const seqs = new Set(batch.map((record) => record.seq));
    const settled = this.pending.filter((record) => seqs.has(record.seq));
    this.pending = this.pending.filter((record) => !seqs.has(record.seq));
    this.backoff = RETRY_BACKOFF_FIRST_MS;
    if (outcome === 'delivered') return;
    this.problem = problem;
    if (!this.reported.has(problem)) {
      this.reported.add(problem);
      const scope = outcome === 'closed' ? 'no more records will be sent' : 'not retried';
      warn(`the engine refused records (${problem}); ${scope}; they follow`);
    }
    printRecords(settled);
    if (outcome === 'closed') {
      this.closed = true;
      printRecords(this.pending.splice(0));
    }
  }

  // Deliver what waits, synchronously (records in flight included: the engine keeps a seq once).
  flushSync(final) {
    if (this.finished) return true;
    if (this.pending.length && !this.closed) {
      const sent = this.pending.slice();
      let offset = 0;
      for (const outcome of this.runFlushHelper()) {
        this.apply(sent.slice(offset, offset + outcome.n), outcome);
        offset += outcome.n;
      }
    }
    if (final) {
      this.finished = true;
      if (this.pending.length) this.giveUp();
    }
    return this.pending.length === 0;
  }

  runFlushHelper() {
    return this.syncFlusher().flush(this.address, this.pending, EXIT_FLUSH_BUDGET_MS);
  }

  syncFlusher() {
    if (!this.flusher) {
      const { SyncFlusher } = require('./sync-flush');
      this.flusher = new SyncFlusher();
    }
    return this.flusher;
  }

  giveUp() {
    warn(`the engine did not take ${this.pending.length} record(s) before exit ` +
      `(${this.problem || 'no time left'}); they follow`);
    printRecords(this.pending.splice(0));
  }
}

function printRecords(records) {
  for (const record of records) warn(recordJson(record));
}

module.exports = { EngineSink, StderrSink, addressFromEnv, deliverBatches, escapeSegment };
