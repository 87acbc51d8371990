'use strict';
// odin: the Node SDK of Odin, for use inside jobs. No dependencies.
//
//   const odin = require('odin')({ config: 'job.yml' });   // or require('odin')('job.yml')
//   odin.watch('url fetched', url);
//   if (odin.condition('url not empty', url !== '')) { ... }
//   odin.result('done', 0);   // records, delivers and exits with status 0
//
// Inside a run records go to the engine named by ODIN_SOCKET / ODIN_RUN_ID /
// ODIN_RUN_TOKEN; outside Odin each is printed to stderr as `odin: {json}`.

const { EngineSink, StderrSink, addressFromEnv } = require('./lib/engine');
const { OdinConfigError, readJobFile } = require('./lib/jobfile');
const { MAX_RECORD_BYTES, MAX_RECORDS_PER_RUN, Numbering, OdinLimitError, warn } = require('./lib/records');

// Numbers records, enforces the bounds and hands them to the sink; one per process.
class Recorder {
  constructor(sink) {
    this.sink = sink;
    this.numbering = new Numbering();
  }

  record(type, desc, value, strict) {
    let record;
    try {
      record = this.numbering.make(type, desc, value);
    } catch (err) {
      if (strict || !(err instanceof OdinLimitError)) throw err;
      warn(`${err.message.replace(/^odin: /, '')}; dropped`);
      return;
    }
    this.sink.put(record);
  }
}

let shared = null;

function processRecorder() {
  if (!shared) {
    const address = addressFromEnv(process.env);
    const recorder = new Recorder(address ? new EngineSink(address) : new StderrSink());
    process.on('exit', () => recorder.sink.flushSync(true));
    shared = recorder;
  }
  return shared;
}

class Odin {
  // config: the job's YAML file (relative to the current directory), read for job.id and
  // job.name. Inside a run the engine's environment wins and the file may be missing.
  constructor(config = 'job.yml') {
    this._recorder = processRecorder();
    this.inside = this._recorder.sink instanceof EngineSink;
    let fields = {};
    try {
      fields = readJobFile(config);
    } catch (err) {
      if (!this.inside) throw err;
    }
    this.config = config;
    this.jobId = process.env.ODIN_JOB_ID || fields.id || '';
    this.jobName = process.env.ODIN_JOB_NAME || fields.name || '';
    this.runId = process.env.ODIN_RUN_ID || '';
    this.node = process.env.ODIN_NODE || '';
  }

  // Record any JSON-able value (others as String(value)); throws OdinLimitError past a bound.
  watch(desc, value) {
    this._recorder.record('watch', desc, value, true);
  }

  // Record Boolean(expr) and return it, synchronously.
  condition(desc, expr) {
    const ok = Boolean(expr);
    this._recorder.record('condition', desc, ok, false);
    return ok;
  }

  // Record the result (0 success, 1 failure), deliver every record and exit with status.
  result(desc, status) {
    const code = Number(status);
    if (!Number.isInteger(code)) throw new TypeError(`odin: result status must be an integer, not ${status}`);
    this._recorder.record('result', desc, code, false);
    this._recorder.sink.flushSync(true);
    process.exit(code);
  }

  // Deliver buffered records now, synchronously; true when none is left waiting.
  flush() {
    return this._recorder.sink.flushSync(false);
  }
}

function odin(options) {
  const config = typeof options === 'string' ? options : (options && options.config) || 'job.yml';
  return new Odin(config);
}

module.exports = odin;
module.exports.default = odin;
Object.assign(odin, { Odin, OdinConfigError, OdinLimitError, MAX_RECORD_BYTES, MAX_RECORDS_PER_RUN });
