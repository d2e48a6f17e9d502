'use strict';
/** redisched for Node.js: the Scheduler (one method per script), the Worker, push and the server. */
module.exports = {
  ...require('./redisched'),
  ...require('./worker'),
  ...require('./push'),
  ...require('./webhook'),
  ...require('./signing'),
  ...require('./body'),
  ...require('./server'),
  ...require('./auth'),
};
