export declare const MAX_RECORD_BYTES: number;
export declare const MAX_RECORDS_PER_RUN: number;

export declare class OdinLimitError extends RangeError {
  readonly bound: 'MAX_RECORD_BYTES' | 'MAX_RECORDS_PER_RUN';
  readonly limit: number;
}

export declare class OdinConfigError extends Error {}

export declare class Odin {
  constructor(config?: string);
  readonly inside: boolean;
  readonly config: string;
  readonly jobId: string;
  readonly jobName: string;
  readonly runId: string;
  readonly node: string;
  watch(desc: string, value: unknown): void;
  condition(desc: string, expr: unknown): boolean;
  result(desc: string, status: number): never;
  flush(): boolean;
}

declare function odin(options?: string | { config?: string }): Odin;
export default odin;
