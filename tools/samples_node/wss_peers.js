'use strict';
// Node `ws` over https.createServer (wss://) on loopback, for tests/test_tls_node.py.
//
//   node wss_peers.js PORT CERT KEY KEYLOG TRUTH [CIPHERS]
//
// The server writes its TLS secrets from the 'keylog' event to KEYLOG (NSS key log
// format); both peers log what they send to TRUTH (JSON lines: direction, type,
// payload as hex). CIPHERS (e.g. TLS_CHACHA20_POLY1305_SHA256) selects the suite.

const fs = require('fs');
const https = require('https');
const { WebSocket, WebSocketServer } = require('ws');

const [port, certPath, keyPath, keylogPath, truthPath, ciphers] = process.argv.slice(2);
const truth = [];
const log = (direction, data, isBinary) => truth.push({
  direction, type: isBinary ? 'binary' : 'text', payload: Buffer.from(data).toString('hex'),
});

const options = { cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath) };
if (ciphers) options.ciphers = ciphers;
const server = https.createServer(options);
const keylog = fs.createWriteStream(keylogPath);
server.on('keylog', (line) => keylog.write(line));

const wss = new WebSocketServer({ server, perMessageDeflate: true });
const fromClient = ['node says hello', Buffer.alloc(3000, 7), 'é'.repeat(2000)];
const fromServer = ['welcome from node', Buffer.from([0, 1, 2, 3, 255]), 'z'.repeat(40000)];

wss.on('connection', (ws) => {
  let got = 0;
  ws.on('message', () => {
    got += 1;
    if (got === fromClient.length) {
      for (const m of fromServer) {
        log('s2c', m, typeof m !== 'string');
        ws.send(m);
      }
    }
  });
});

server.listen(Number(port), '127.0.0.1', () => {
  const ws = new WebSocket(`wss://localhost:${port}/node`, {
    rejectUnauthorized: false, perMessageDeflate: true,
  });
  let got = 0;
  ws.on('open', () => {
    for (const m of fromClient) {
      log('c2s', m, typeof m !== 'string');
      ws.send(m);
    }
  });
  ws.on('message', () => {
    got += 1;
    if (got === fromServer.length) ws.close(1000, 'node done');
  });
  ws.on('close', () => {
    fs.writeFileSync(truthPath, truth.map((t) => JSON.stringify(t)).join('\n') + '\n');
    keylog.end(() => server.close(() => process.exit(0)));
    wss.close();
  });
});
