'use strict';
// Node `ws` server + client pair driven by a plan written by tools/make_samples.py.
//
//   node ws_peers.js PLAN.json TRUTH.jsonl INFO.json
//
// The plan names an already listening TCP socket (inherited file descriptor, created by
// the Python side with TCP_MAXSEG set) that the ws server adopts, and lists, per
// connection, the steps both peers execute in order. Each peer appends what it passes
// to send()/ping()/close() to the truth log; automatic pongs are not logged. A
// fragmented message is logged once, when its final fragment is handed to send().

const fs = require('fs');
const http = require('http');
const path = require('path');
const { WebSocket, WebSocketServer } = require('ws');

const [planPath, truthPath, infoPath] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(planPath, 'utf8'));
const truth = [];

function logSend(clientPort, direction, type, payload, code, reason) {
  truth.push({
    client_port: clientPort,
    direction,
    type,
    payload_b64: payload.toString('base64'),
    close_code: code === undefined ? null : code,
    close_reason: reason === undefined ? null : reason,
  });
}

function closePayload(code, reason) {
  if (code === undefined) return Buffer.alloc(0);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code, 0);
  return Buffer.concat([head, Buffer.from(reason || '', 'utf8')]);
}

// Wraps ws.close() so that the close frame the library sends on our behalf (including
// the reply ws sends when it receives a close frame) is logged with its arguments.
function instrumentClose(ws, clientPort, direction) {
  const original = ws.close.bind(ws);
  ws.close = (code, reason) => {
    if (ws.readyState === WebSocket.OPEN) {
      const text = reason === undefined ? '' : Buffer.from(reason).toString('utf8');
      logSend(
        clientPort,
        direction,
        'close',
        closePayload(code, text),
        code,
        code === undefined ? undefined : text,
      );
    }
    return original(code, reason);
  };
}

// Queue of events with promise-based consumers.
class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    const idx = this.waiters.findIndex((w) => w.match(item));
    if (idx >= 0) {
      const [waiter] = this.waiters.splice(idx, 1);
      waiter.resolve(item);
    } else {
      this.items.push(item);
    }
  }

  next(match = () => true, timeoutMs = 10000) {
    const idx = this.items.findIndex(match);
    if (idx >= 0) return Promise.resolve(this.items.splice(idx, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve };
      this.waiters.push(waiter);
      setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) {
          this.waiters.splice(i, 1);
          reject(new Error('timed out waiting for an event'));
        }
      }, timeoutMs).unref();
    });
  }
}

function attach(ws) {
  const events = new Inbox();
  const pongs = new Inbox();
  ws.on('message', (data, isBinary) => events.push({ kind: 'message', data, isBinary }));
  ws.on('close', (code, reason) => events.push({ kind: 'close', code, reason }));
  ws.on('pong', (data) => pongs.push(Buffer.from(data)));
  ws.on('error', (err) => {
    console.error('ws error', err);
    process.exitCode = 1;
  });
  return { events, pongs };
}

function b64(s) {
  return Buffer.from(s, 'base64');
}

async function runSide(ws, inbox, conn, me) {
  const clientPort = conn.client_port;
  for (const step of conn.steps) {
    if (step.dir !== me) {
      if (step.kind === 'text' || step.kind === 'binary') {
        const ev = await inbox.events.next((e) => e.kind === 'message');
        const expected = b64(step.b64);
        if (ev.isBinary !== (step.kind === 'binary') || !Buffer.from(ev.data).equals(expected)) {
          throw new Error(`${me}: unexpected message on ${clientPort}`);
        }
      } else if (step.kind === 'close') {
        await inbox.events.next((e) => e.kind === 'close');
      }
      continue;
    }
    const binary = step.kind === 'binary';
    if (step.kind === 'text' || binary) {
      if (step.parts) {
        const dataParts = step.parts.filter((p) => p.data !== undefined);
        let sent = 0;
        for (const part of step.parts) {
          if (part.ping !== undefined) {
            const payload = b64(part.ping);
            ws.ping(payload);
            logSend(clientPort, me, 'ping', payload);
          } else {
            sent += 1;
            ws.send(b64(part.data), { binary, fin: sent === dataParts.length });
          }
        }
        logSend(clientPort, me, step.kind, Buffer.concat(dataParts.map((p) => b64(p.data))));
      } else {
        const payload = b64(step.b64);
        ws.send(payload, { binary });
        logSend(clientPort, me, step.kind, payload);
      }
    } else if (step.kind === 'ping') {
      const payload = b64(step.b64);
      ws.ping(payload);
      logSend(clientPort, me, 'ping', payload);
      await inbox.pongs.next((p) => p.equals(payload));
    } else if (step.kind === 'close') {
      ws.close(step.code, step.reason); // logged by instrumentClose
      await inbox.events.next((e) => e.kind === 'close');
    } else {
      throw new Error(`unknown step kind ${step.kind}`);
    }
  }
}

async function main() {
  const server = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: { threshold: 0 } });
  const serverDone = new Map();
  for (const conn of plan.connections) {
    let resolve;
    let reject;
    const done = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    serverDone.set(conn.client_port, { done, resolve, reject });
  }
  wss.on('connection', (ws, req) => {
    const clientPort = req.socket.remotePort;
    const conn = plan.connections.find((c) => c.client_port === clientPort);
    const slot = serverDone.get(clientPort);
    instrumentClose(ws, clientPort, 's2c');
    const inbox = attach(ws);
    runSide(ws, inbox, conn, 's2c').then(slot.resolve, slot.reject);
  });
  await new Promise((resolve) => server.listen({ fd: plan.fd }, resolve));

  const info = {
    node: process.version,
    ws: JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve('ws')), 'package.json'))).version,
    connections: [],
  };
  for (const conn of plan.connections) {
    const url = `ws://${plan.host_literal}:${plan.port}${conn.path}`;
    const ws = new WebSocket(url, {
      localAddress: plan.host,
      localPort: conn.client_port,
      perMessageDeflate: conn.deflate ? { threshold: 0 } : false,
    });
    instrumentClose(ws, conn.client_port, 'c2s');
    const inbox = attach(ws);
    let extensions = null;
    ws.on('upgrade', (res) => {
      extensions = res.headers['sec-websocket-extensions'] || null;
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await Promise.all([runSide(ws, inbox, conn, 'c2s'), serverDone.get(conn.client_port).done]);
    info.connections.push({
      client_port: conn.client_port,
      extensions,
      subprotocol: ws.protocol || null,
    });
  }
  wss.close();
  server.close();
  fs.writeFileSync(truthPath, truth.map((t) => JSON.stringify(t)).join('\n') + '\n');
  fs.writeFileSync(infoPath, JSON.stringify(info, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
