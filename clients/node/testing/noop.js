'use strict';
// A handler that does nothing, for each topic of $GLUE_TOPICS: the worker benchmark's load
// (bench/bench_glue.py).
const noop = async () => {};
module.exports = Object.fromEntries((process.env.GLUE_TOPICS || '').split(',').filter(Boolean).map((t) => [t, noop]));
