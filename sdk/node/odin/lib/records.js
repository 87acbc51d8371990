'use strict';
// Records: numbering, the two bounds and the one JSON encoding (compact UTF-8,
// the bytes the engine measures).

const MAX_RECORD_BYTES = 64 * 1024;
const MAX_RECORDS_PER_RUN = 1000;

class OdinLimitError extends RangeError {
  constructor(message, bound, limit) {
    super(message);
    this.name = 'OdinLimitError';
    this.bound = bound;
    this.limit = limit;
  }
}

function describe(value) {
  try {
    return String(value);
  } catch (err) {
    return Object.prototype.toString.call(value);
  }
}

// value as plain JSON data; what JSON cannot hold (BigInt, cycles, undefined...) becomes String(value).
function plainJson(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    text = undefined;
  }
  return text === undefined ? describe(value) : JSON.parse(text);
}

function recordJson(record) {
  return JSON.stringify(record);
}

function now() {
  return (performance.timeOrigin + performance.now()) / 1000;
}

class Numbering {
  constructor() {
    this.last = 0;
  }

  // The next record, or an OdinLimitError without using a number.
  make(type, desc, value) {
    const text = describe(desc);
    if (this.last >= MAX_RECORDS_PER_RUN) {
      throw new OdinLimitError(
        `odin: more than MAX_RECORDS_PER_RUN (${MAX_RECORDS_PER_RUN}) records in one run; ` +
          `${type} ${JSON.stringify(text.slice(0, 80))} not recorded`,
        'MAX_RECORDS_PER_RUN', MAX_RECORDS_PER_RUN);
    }
    const record = { seq: this.last + 1, ts: now(), type, desc: text, value: plainJson(value) };
    const size = Buffer.byteLength(recordJson(record), 'utf8');
    if (size > MAX_RECORD_BYTES) {
      throw new OdinLimitError(
        `odin: record ${JSON.stringify(text.slice(0, 80))} is ${size} bytes of JSON, ` +
          `more than MAX_RECORD_BYTES (${MAX_RECORD_BYTES})`,
        'MAX_RECORD_BYTES', MAX_RECORD_BYTES);
    }
    this.last = record.seq;
    return record;
  }
}

function warn(message) {
  try {
    process.stderr.write(`odin: ${message}\n`);
  } catch (err) {
    // stderr closed: nothing left to tell.
  }
}

module.exports = {
  MAX_RECORD_BYTES, MAX_RECORDS_PER_RUN, OdinLimitError, Numbering, plainJson, recordJson, warn,
};
