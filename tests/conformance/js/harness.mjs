// Start/stop a real `coffer serve` and build the official @azure clients against it.
// The runner (run.mjs) starts one server, then runs `node --test` as a child with NODE_EXTRA_CA_CERTS set
// (Node reads it only at start-up) and COFFER_CREDS_FILE pointing at admin-credentials.json.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHash, randomUUID } from "node:crypto";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export function cofferBin() {
  const p = process.env.COFFER_BIN || path.join(REPO_ROOT, "target", "debug", "coffer");
  return path.isAbsolute(p) ? p : path.join(REPO_ROOT, p);
}

export function logDir() {
  const d = process.env.COFFER_CONFORMANCE_LOGDIR || path.join(REPO_ROOT, "target", "conformance-logs");
  fs.mkdirSync(d, { recursive: true });
  return d;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function healthz(port, ca) {
  return new Promise((resolve) => {
    const req = https.get(
      { host: "127.0.0.1", port, path: "/healthz", ca, timeout: 5000 },
      (res) => {
        res.resume();
        resolve(res.statusCode);
      },
    );
    req.on("error", () => resolve(0));
    req.on("timeout", () => {
      req.destroy();
      resolve(0);
    });
  });
}

// A new instance's bootstrap principal is Managed HSM Administrator only; the key tests need Crypto User and
// Crypto Officer at "/". Names are derived from the principal so a restart finds them (409) instead of duplicating.
const CRYPTO_ROLES = ["21dbd100-6940-42c2-9190-5d6cb909625b", "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"];

function httpsJson(port, ca, method, pathAndQuery, headers, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: "127.0.0.1", port, path: pathAndQuery, method, ca, headers, timeout: 30_000 },
      (res) => {
        let data = "";
        res.on("data", (c) => (data += c));
        res.on("end", () => resolve({ status: res.statusCode, body: data }));
      },
    );
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

async function grantCryptoRoles(port, creds) {
  const ca = fs.readFileSync(creds.ca_cert);
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: creds.client_id,
    client_secret: creds.client_secret,
    scope: `${creds.url}/.default`,
  }).toString();
  const tok = await httpsJson(port, ca, "POST", `/${creds.tenant_id}/oauth2/v2.0/token`,
    { "content-type": "application/x-www-form-urlencoded" }, form);
  if (tok.status !== 200) throw new Error(`token: ${tok.status} ${tok.body}`);
  const token = JSON.parse(tok.body).access_token;
  for (const role of CRYPTO_ROLES) {
    const name = createHash("sha256").update(`${creds.object_id}/${role}`).digest("hex");
    const guid = `${name.slice(0, 8)}-${name.slice(8, 12)}-${name.slice(12, 16)}-${name.slice(16, 20)}-${name.slice(20, 32)}`;
    const body = JSON.stringify({ properties: { principalId: creds.object_id,
      roleDefinitionId: `Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/${role}` } });
    const r = await httpsJson(port, ca, "PUT", `/providers/Microsoft.Authorization/roleAssignments/${guid}?api-version=7.6`,
      { authorization: `Bearer ${token}`, "content-type": "application/json" }, body);
    if (r.status !== 201 && r.status !== 409) throw new Error(`assign ${role}: ${r.status} ${r.body}`);
  }
}

/**
 * In PostgreSQL mode (COFFER_TEST_DATABASE=postgres with the cluster of `scripts/postgres start`), the flags that
 * put this data directory's state in a database of its own (created on first use); none otherwise.
 */
export function databaseArgs(dataDir) {
  if (process.env.COFFER_TEST_DATABASE !== "postgres") return [];
  const admin = new URL(process.env.COFFER_TEST_PG_URL);
  const passwordFile = process.env.COFFER_TEST_PG_PASSWORD_FILE;
  const ca = process.env.COFFER_TEST_PG_CA;
  const name = "coffer_" + createHash("sha256").update(path.resolve(dataDir)).digest("hex").slice(0, 20);
  const env = {
    ...process.env,
    PGPASSWORD: fs.readFileSync(passwordFile, "utf8").split("\n")[0],
    PGSSLMODE: "verify-full",
    PGSSLROOTCERT: ca,
  };
  const conn = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", admin.hostname, "-p", admin.port, "-U", admin.username,
    "-d", admin.pathname.replace(/^\//, "") || "postgres"];
  const exists = execFileSync("psql", [...conn, "-tAc", `SELECT 1 FROM pg_database WHERE datname = '${name}'`],
    { env, encoding: "utf8" }).trim();
  if (exists !== "1") execFileSync("psql", [...conn, "-c", `CREATE DATABASE "${name}"`], { env });
  const url = `postgres://${admin.username}@${admin.hostname}:${admin.port}/${name}?sslmode=verify-full&sslrootcert=${ca}`;
  return ["--database-url", url, "--database-password-file", passwordFile];
}

export async function startServer({ dataDir, name, port, timeoutMs = 180_000 }) {
  const bin = cofferBin();
  if (!fs.existsSync(bin)) {
    throw new Error(`coffer binary not found at ${bin} (set COFFER_BIN or run cargo build -p coffer-cli)`);
  }
  port = port || (await freePort());
  fs.mkdirSync(dataDir, { recursive: true });
  const logPath = path.join(logDir(), `${name}.log`);
  const logFd = fs.openSync(logPath, "w");
  fs.writeSync(logFd, `\n===== start: port ${port}, data dir ${dataDir} =====\n`);
  const child = spawn(
    bin,
    ["serve", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`, "--dev", ...databaseArgs(dataDir)],
    {
      cwd: dataDir,
      stdio: ["ignore", logFd, logFd],
      env: { RUST_LOG: "info", RUST_BACKTRACE: "1", NO_COLOR: "1", ...process.env },
    },
  );
  let exited = null;
  child.on("exit", (code, signal) => {
    exited = { code, signal };
  });
  const credsPath = path.join(dataDir, "admin-credentials.json");
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`coffer exited (${JSON.stringify(exited)}) during start-up; see ${logPath}\n${tail(logPath)}`);
    }
    if (fs.existsSync(credsPath)) {
      try {
        const creds = JSON.parse(fs.readFileSync(credsPath, "utf8"));
        const status = await healthz(port, fs.readFileSync(creds.ca_cert));
        if (status === 200) {
          await grantCryptoRoles(port, creds);
          return {
            child,
            port,
            creds,
            credsPath,
            logPath,
            exited: () => exited,
            stop: () => stopChild(child, () => exited, logPath),
          };
        }
        last = `healthz ${status}`;
      } catch (e) {
        last = String(e);
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGKILL");
  throw new Error(`coffer not ready after ${timeoutMs} ms (last: ${last})\n${tail(logPath)}`);
}

async function stopChild(child, exited, logPath, timeoutMs = 30_000) {
  if (!exited()) {
    child.kill("SIGTERM");
    const deadline = Date.now() + timeoutMs;
    while (!exited() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (!exited()) {
      child.kill("SIGKILL");
      throw new Error(`coffer did not exit within ${timeoutMs} ms of SIGTERM\n${tail(logPath)}`);
    }
  }
  return exited();
}

export function tail(logPath, lines = 60) {
  try {
    const all = fs.readFileSync(logPath, "utf8").split("\n");
    return `--- last lines of ${logPath} ---\n` + all.slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export function uniq(prefix) {
  return `${prefix}-${randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

// ------------------------------------------------------------------------------------------ SDK clients
// Imported lazily so that run.mjs works before `npm ci`.
export async function clients() {
  const credsFile = process.env.COFFER_CREDS_FILE;
  if (!credsFile) throw new Error("COFFER_CREDS_FILE is not set: run the JS suite through run.mjs");
  if (!process.env.NODE_EXTRA_CA_CERTS) throw new Error("NODE_EXTRA_CA_CERTS is not set: run through run.mjs");
  const creds = JSON.parse(fs.readFileSync(credsFile, "utf8"));
  const { ClientSecretCredential } = await import("@azure/identity");
  const { KeyClient, CryptographyClient } = await import("@azure/keyvault-keys");
  const credential = new ClientSecretCredential(creds.tenant_id, creds.client_id, creds.client_secret, {
    authorityHost: creds.authority,
    disableInstanceDiscovery: true,
  });
  const recorder = makeRecorder();
  const options = { disableChallengeResourceVerification: true };
  const keyClient = new KeyClient(creds.url, credential, options);
  const cryptoClient = (keyOrId) =>
    new CryptographyClient(keyOrId, credential, {
      ...options,
      additionalPolicies: [{ policy: recorder.policy, position: "perCall" }],
    });
  return { creds, credential, keyClient, cryptoClient, recorder, CryptographyClient };
}

// Records (method, path, status) of every response a client's pipeline sees.
export function makeRecorder() {
  const calls = [];
  return {
    calls,
    policy: {
      name: "cofferRecorder",
      async sendRequest(request, next) {
        const response = await next(request);
        calls.push({ method: request.method, path: new URL(request.url).pathname, status: response.status });
        return response;
      },
    },
    take() {
      return calls.splice(0, calls.length);
    },
    // Assert a POST .../{verb} answered 200 since the last take().
    assertRemote(verb) {
      const seen = this.take();
      const ok = seen.filter(
        (c) => c.method === "POST" && c.path.toLowerCase().replace(/\/$/, "").endsWith("/" + verb.toLowerCase()) && c.status === 200,
      );
      if (ok.length === 0) {
        throw new Error(`expected a POST .../${verb} answered 200 by the server, saw ${JSON.stringify(seen)}`);
      }
    },
  };
}
