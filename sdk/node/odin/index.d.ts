// Types of the Node SDK of Odin, for CommonJS: `const odin = require('odin')('job.yml')`
// (TypeScript: `import odin = require('odin')`). ES modules get index.d.mts.

/** A job's handle on Odin: `require('odin')(options)` makes one. */
declare function odin(options?: string | odin.Options): odin.Odin;

declare namespace odin {
  /** The YAML file of the job (default `job.yml`, relative to the current directory). */
  export interface Options {
    config?: string;
  }

  /** The most bytes one record's JSON may take (64 KiB). */
  export const MAX_RECORD_BYTES: number;
  /** The most records one run may make (1000). */
  export const MAX_RECORDS_PER_RUN: number;

  /** A record crossed a bound: `watch` throws it; `condition` and `result` drop the record. */
  export class OdinLimitError extends RangeError {
    readonly bound: 'MAX_RECORD_BYTES' | 'MAX_RECORDS_PER_RUN';
    readonly limit: number;
  }

  /** Outside Odin, the job's YAML file is missing or unreadable. */
  export class OdinConfigError extends Error {}

  /** Records go to the engine inside a run, to stderr (`odin: {json}`) outside Odin. */
  export class Odin {
    constructor(config?: string);
    readonly inside: boolean;
    readonly config: string;
    readonly jobId: string;
    readonly jobName: string;
    readonly runId: string;
    readonly node: string;
    /** Record any JSON-able value (others as `String(value)`). */
    watch(desc: string, value: unknown): void;
    /** Record `Boolean(expr)` and return it. */
    condition(desc: string, expr: unknown): boolean;
    /** Record the result (0 success, 1 failure), deliver every record and exit with it. */
    result(desc: string, status: number): never;
    /** Deliver buffered records now; true when none is left waiting. */
    flush(): boolean;
  }

  export { odin as default };
}

export = odin;
