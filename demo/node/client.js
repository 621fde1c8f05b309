// Node greeter client on xds:///echo: gRPC's own xDS client (@grpc/grpc-js-xds) gets the address list
// from `gnaming xds-agent` through the bootstrap file named by GRPC_XDS_BOOTSTRAP. No libgnaming code
// runs in this process.
//
//     GRPC_XDS_BOOTSTRAP=FILE node client.js NAME [--target xds:///echo] [--interval MS]
//
// Calls SayHello in a loop (the reply names the answering server) and prints a JSON status line every
// quarter second, the demo's client protocol (demo/run.py); SIGTERM prints a last status and exits.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
require('@grpc/grpc-js-xds').register(); // makes the xds: scheme known to grpc-js

// An xDS client learns no addresses through public API, so "answering" (servers that replied within
// this window) stands for the list the client uses.
const ANSWERING_WINDOW_MS = 1000;

function parseArgs(argv) {
  const args = { name: null, target: 'xds:///echo', intervalMs: 10 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target') args.target = argv[++i];
    else if (argv[i] === '--interval') args.intervalMs = Number(argv[++i]);
    else if (args.name === null) args.name = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!args.name || !(args.intervalMs >= 0)) {
    throw new Error('usage: client.js NAME [--target xds:///echo] [--interval MS]');
  }
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const proto = process.env.GREETER_PROTO || path.join(__dirname, '..', '..', 'examples', 'cpp', 'helloworld.proto');
  const helloworld = grpc.loadPackageDefinition(protoLoader.loadSync(proto)).helloworld;
  const client = new helloworld.Greeter(args.target, grpc.credentials.createInsecure());

  const counts = {};
  const lastAnswer = {};
  let ok = 0;
  let failed = 0;
  let failures = [];
  let lastError = null;
  let stopping = false;
  let waitForFirst = true; // only the first call waits for endpoints; later ones fail fast

  function status() {
    const now = Date.now();
    const answering = Object.keys(lastAnswer).filter((s) => now - lastAnswer[s] <= ANSWERING_WINDOW_MS).sort();
    process.stdout.write(JSON.stringify({
      event: 'status', client: args.name, lang: 'node', answering, last_answer: lastAnswer,
      counts, ok, failed, failures, last_error: lastError,
    }) + '\n');
    failures = [];
  }

  function call() {
    if (stopping) return;
    const metadata = new grpc.Metadata({ waitForReady: waitForFirst });
    // The first call also waits for the xDS client's start.
    const deadline = Date.now() + (waitForFirst ? 20000 : 2000);
    client.sayHello({ name: args.name }, metadata, { deadline }, (err, reply) => {
      if (err) {
        failed++;
        failures.push(Date.now());
        lastError = `${grpc.status[err.code]}: ${err.details}`;
      } else {
        waitForFirst = false;
        counts[reply.message] = (counts[reply.message] || 0) + 1;
        lastAnswer[reply.message] = Date.now();
        ok++;
      }
      setTimeout(call, args.intervalMs);
    });
  }

  const ticker = setInterval(status, 250);
  const stop = () => {
    stopping = true;
    clearInterval(ticker);
    status();
    client.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  call();
}

main();
