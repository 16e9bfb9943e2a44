// A hookd webhook receiver using only Node's standard library.
//
//   HOOKD_WEBHOOK_SECRET=s3cret PORT=9000 node examples/node/receiver.js
//
// It verifies X-CG-Hook-Signature, accepts each delivery id once, answers
// 200 at once and handles the event afterwards. It prints "accepted
// <delivery> <type>" for a new delivery, "duplicate <delivery>" for one it
// has seen, and "handled <event> <type> for <org>" once the work is done;
// refused requests go to standard error.
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');

const secret = process.env.HOOKD_WEBHOOK_SECRET || '';
const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 9000);
const maxBody = 1 << 20; // hookd's deliveries stay far below this

if (!secret) {
  console.error("set HOOKD_WEBHOOK_SECRET to the webhook's secret");
  process.exit(1);
}

// Delivery ids already accepted. In memory, so forgotten at restart: a real
// receiver records the id in its database, in the same transaction as the
// work, under a unique constraint.
const seen = new Set();

function validSignature(body, header) {
  const expected = Buffer.from('sha256=' + crypto.createHmac('sha256', secret).update(body).digest('hex'));
  const received = Buffer.from(header || '');
  // timingSafeEqual throws on buffers of different lengths; the length of
  // a signature is no secret, so checking it first leaks nothing.
  return expected.length === received.length && crypto.timingSafeEqual(expected, received);
}

// handle does the work of an accepted delivery, after hookd has had its answer.
function handle(body) {
  let event;
  try {
    event = JSON.parse(body);
  } catch (err) {
    return console.error(`cannot decode event: ${err.message}`);
  }
  // The real work goes here: open a ticket, notify a channel, ...
  // event.data has the shape of its type: GET /v1/event-types/{type}.
  console.log(`handled ${event.id} ${event.type} for ${event.organization_id}`);
}

function answer(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text + '\n');
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') return answer(res, 405, 'POST only');
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= maxBody) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > maxBody) return answer(res, 413, 'body too large');
    // The signature covers the raw bytes: verify them before parsing JSON.
    const body = Buffer.concat(chunks);
    const delivery = req.headers['x-cg-hook-delivery'];
    if (!validSignature(body, req.headers['x-cg-hook-signature'])) {
      console.error(`rejected ${delivery}: bad signature`);
      return answer(res, 401, 'invalid signature');
    }
    if (seen.has(delivery)) {
      // Still 200: the delivery did arrive, and any other answer makes hookd
      // try again.
      console.log(`duplicate ${delivery}`);
      return answer(res, 200, 'ok');
    }
    seen.add(delivery);
    console.log(`accepted ${delivery} ${req.headers['x-cg-hook-event']}`);
    answer(res, 200, 'ok');
    setImmediate(handle, body);
  });
});

server.listen(port, host, () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});
