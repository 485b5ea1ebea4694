// Preloaded into the MCP server under test (node --require): a listen() on a bare port binds
// 127.0.0.1 instead of every interface, so the test's server is reachable on loopback only.
const net = require('node:net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if ((typeof args[0] === 'number' || /^\d+$/.test(String(args[0]))) && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
