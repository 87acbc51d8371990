'use strict';
// Run by EngineSink.flushSync with spawnSync: reads {address, records, budgetMs}
// on stdin, POSTs the records and prints the outcome of each batch as JSON.

const { deliverBatches } = require('./engine');

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', async () => {
  const { address, records, budgetMs } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const outcomes = await deliverBatches(address, records, budgetMs);
  process.stdout.write(JSON.stringify(outcomes), () => process.exit(0));
});
