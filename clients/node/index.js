'use strict';
/**
 * redisched for Node.js: the Scheduler (one method per script), the Worker, push and the server.
 * Exactly what index.d.ts declares (test/exports.test.js): the modules' other names are theirs.
 */
const {
  Scheduler, RedischedError, StaleReservation, VersionConflict, InvalidArgument, TopicPartitioned, encodeResult,
} = require('./redisched');
const { Worker, Backoff, Retry, Cancelled, KEEP } = require('./worker');
const { webhookHandler, payload, retryAfterMs } = require('./push');
const {
  MAX_URL_LENGTH, MAX_SECRETS, MAX_TIMEOUT_MS, checkWebhook, webhookUrlProblem, secretsProblem, timeoutProblem,
} = require('./webhook');
const { MIN_SECRET_KEY_BYTES, secretKey, secretProblem, signature, signHeaders, messageId } = require('./signing');
const { toStored, toJsonText } = require('./body');
const { createServer } = require('./server');
const {
  MIN_TOKEN_LENGTH, OPEN_PATHS, tokenProblem, tokensProblem, bearerCheck, isLoopback, exposureProblem,
} = require('./auth');

module.exports = {
  Scheduler, RedischedError, StaleReservation, VersionConflict, InvalidArgument, TopicPartitioned, encodeResult,
  Worker, Backoff, Retry, Cancelled, KEEP,
  webhookHandler, payload, retryAfterMs,
  MAX_URL_LENGTH, MAX_SECRETS, MAX_TIMEOUT_MS, checkWebhook, webhookUrlProblem, secretsProblem, timeoutProblem,
  MIN_SECRET_KEY_BYTES, secretKey, secretProblem, signature, signHeaders, messageId,
  toStored, toJsonText,
  createServer,
  MIN_TOKEN_LENGTH, OPEN_PATHS, tokenProblem, tokensProblem, bearerCheck, isLoopback, exposureProblem,
};
