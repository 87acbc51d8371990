'use strict';
// The worker of SyncFlusher: POSTs the records it is given, posts the outcomes
// back on its port and wakes the blocked main thread.

const { parentPort, workerData } = require('worker_threads');
const { deliverBatches } = require('./engine');

const { flag, port } = workerData;
parentPort.on('message', async ({ id, address, records, budgetMs }) => {
  const outcomes = await deliverBatches(address, records, budgetMs);
  port.postMessage({ id, outcomes });
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
