'use strict';
// Synchronous delivery for result() and process exit, where Node cannot wait
// for its event loop. A worker thread (started early, unref'd) does the POSTs
// while the main thread blocks on Atomics.wait; if no worker can be had, a
// child Node process does them (spawnSync), which costs a process start.

const path = require('path');
const { spawnSync } = require('child_process');
const { Worker, MessageChannel, receiveMessageOnPort, isMainThread, parentPort, workerData } =
  require('worker_threads');

const HELPER = path.join(__dirname, 'flush-child.js');
const GRACE_MS = 2000;

class SyncFlusher {
  constructor() {
    this.worker = null;
    this.failed = false;
    this.nextId = 1;
  }

  // Start the worker now so that it has booted by the time a flush needs it.
  start() {
    if (this.worker || this.failed || !isMainThread) return;
    try {
      this.flag = new Int32Array(new SharedArrayBuffer(4));
      const { port1, port2 } = new MessageChannel();
      this.port = port1;
      this.worker = new Worker(path.join(__dirname, 'flush-worker.js'), {
        workerData: { flag: this.flag, port: port2 }, transferList: [port2],
        stdout: false, stderr: false, env: {},
      });
      this.worker.unref();
      this.worker.on('error', () => { this.failed = true; });
    } catch (err) {
      this.failed = true;
    }
  }

  // The outcome of each batch tried (see engine.deliverBatches), or a single 'retry' on failure.
  flush(address, records, budgetMs) {
    this.start();
    const outcomes = this.failed ? null : this.viaWorker(address, records, budgetMs);
    return outcomes || viaChild(address, records, budgetMs);
  }

  viaWorker(address, records, budgetMs) {
    const id = this.nextId++;
    Atomics.store(this.flag, 0, 0);
    this.worker.postMessage({ id, address, records, budgetMs });
    const deadline = Date.now() + budgetMs + GRACE_MS;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      Atomics.wait(this.flag, 0, 0, left);
      const reply = receiveMessageOnPort(this.port);
      if (reply && reply.message.id === id) return reply.message.outcomes;
      Atomics.store(this.flag, 0, 0);
    }
    this.failed = true;
    return null;
  }
}

function viaChild(address, records, budgetMs) {
  const child = spawnSync(process.execPath, [HELPER], {
    input: JSON.stringify({ address, records, budgetMs }), encoding: 'utf8',
    timeout: budgetMs + GRACE_MS, stdio: ['pipe', 'pipe', 'inherit'], maxBuffer: 1024 * 1024,
  });
  try {
    return JSON.parse(child.stdout);
  } catch (err) {
    const why = child.error ? child.error.message : `exit ${child.status} ${child.signal || ''}`;
    return [{ n: records.length, outcome: 'retry', problem: `flush helper failed: ${why}` }];
  }
}

module.exports = { SyncFlusher, viaChild };
