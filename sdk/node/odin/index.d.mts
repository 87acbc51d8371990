// Types of the Node SDK of Odin, for ES modules: `import odin from 'odin'`.
import odin = require('./index.js');

export default odin;
export type Options = odin.Options;
export type Odin = odin.Odin;
export const Odin: typeof odin.Odin;
export type OdinLimitError = odin.OdinLimitError;
export const OdinLimitError: typeof odin.OdinLimitError;
export type OdinConfigError = odin.OdinConfigError;
export const OdinConfigError: typeof odin.OdinConfigError;
export const MAX_RECORD_BYTES: number;
export const MAX_RECORDS_PER_RUN: number;
