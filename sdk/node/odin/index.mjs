// The ES module entry: the same single instance as require('odin').
import odin from './index.js';

export default odin;
export const { Odin, OdinConfigError, OdinLimitError, MAX_RECORD_BYTES, MAX_RECORDS_PER_RUN } = odin;
