// Preloaded with `node --require ./loopback-only.js .../kinesis-local/main.js`.
//
// kinesis-local (kinesis-mock 0.6.2) has no setting for the address it binds
// and listens on every interface (server.listen(port, cb)). This project's
// tests and demo must only use loopback, so this shim turns any listen() call
// without a host into one on KINESIS_LOCAL_HOST (default 127.0.0.1).
'use strict';
const net = require('net');
const host = process.env.KINESIS_LOCAL_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, host);
  } else if (args[0] && typeof args[0] === 'object' && !args[0].path && !args[0].host) {
    args[0] = Object.assign({}, args[0], { host });
  }
  return listen.apply(this, args);
};
