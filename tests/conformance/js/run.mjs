#!/usr/bin/env node
// Runs the JS conformance suite: starts one `coffer serve` on a fresh data dir, then `node --test` on the
// *.test.mjs files as a child process with NODE_EXTRA_CA_CERTS = the instance CA (Node reads it only at
// start-up) and COFFER_CREDS_FILE = admin-credentials.json; stops the server with SIGTERM at the end.
// Exit status: the test runner's, or 1 if the server failed to start or to shut down cleanly.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, tail } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const files = fs
  .readdirSync(here)
  .filter((f) => f.endsWith(".test.mjs"))
  .sort()
  .map((f) => path.join(here, f));
if (files.length === 0) {
  console.error("run.mjs: no *.test.mjs files found");
  process.exit(1);
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-js-"));
let server;
try {
  server = await startServer({ dataDir: path.join(dataDir, "data"), name: "js-session" });
} catch (e) {
  console.error(`run.mjs: ${e.message}`);
  process.exit(1);
}

const child = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-timeout=180000", ...files], {
  cwd: here,
  stdio: "inherit",
  env: {
    ...process.env,
    NODE_EXTRA_CA_CERTS: server.creds.ca_cert,
    COFFER_CREDS_FILE: server.credsPath,
  },
});
const onSignal = (sig) => child.kill(sig);
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
const testStatus = await new Promise((resolve) => child.on("exit", (code, signal) => resolve(signal ? 1 : code)));

let status = testStatus;
try {
  const exit = await server.stop();
  if (exit.code !== 0) {
    console.error(`run.mjs: coffer exited with ${JSON.stringify(exit)} after SIGTERM (expected 0)\n${tail(server.logPath)}`);
    status = status || 1;
  }
} catch (e) {
  console.error(`run.mjs: ${e.message}`);
  status = status || 1;
}
if (testStatus !== 0) {
  console.error(`run.mjs: tests failed; server log: ${server.logPath}\n${tail(server.logPath, 40)}`);
}
fs.rmSync(dataDir, { recursive: true, force: true });
process.exit(status);
