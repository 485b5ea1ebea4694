// Preloaded into the MCP server under test (node --require): a listen() on a bare port binds
// $PADDOCK_LISTEN_HOST (127.0.0.1 by default) instead of every interface, so the test's server is
// reachable only at the address the test chose (loopback, or the node's veth); once listening,
// the port the kernel gave it (PORT=0) is written to $PADDOCK_PORT_FILE.
const fs = require('node:fs');
const net = require('node:net');
const host = process.env.PADDOCK_LISTEN_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if ((typeof args[0] === 'number' || /^\d+$/.test(String(args[0]))) && typeof args[1] !== 'string') {
    args.splice(1, 0, host);
    if (process.env.PADDOCK_PORT_FILE) {
      this.once('listening', () => {
        const file = process.env.PADDOCK_PORT_FILE;
        fs.writeFileSync(file + '.tmp', String(this.address().port));
        fs.renameSync(file + '.tmp', file);
      });
    }
  }
  return listen.apply(this, args);
};
