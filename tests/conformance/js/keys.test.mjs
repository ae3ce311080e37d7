// @azure/identity + @azure/keyvault-keys (unmodified) against a running Coffer (started by run.mjs).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { clients, uniq } from "./harness.mjs";

let c; // { creds, credential, keyClient, cryptoClient, recorder }

before(async () => {
  c = await clients();
});

const b64u = (u8) => Buffer.from(u8).toString("base64url");
const sha = (bits, data) => crypto.createHash(`sha${bits}`).update(data).digest();

function rsaPublicKey(jwk) {
  return crypto.createPublicKey({ key: { kty: "RSA", n: b64u(jwk.n), e: b64u(jwk.e) }, format: "jwk" });
}

function ecPublicKey(jwk) {
  return crypto.createPublicKey({ key: { kty: "EC", crv: jwk.crv, x: b64u(jwk.x), y: b64u(jwk.y) }, format: "jwk" });
}

async function expectStatus(promise, status) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.statusCode, status, `expected HTTP ${status}, got ${e.statusCode}: ${e.message}`);
    return true;
  });
}

test("create RSA-HSM, EC-HSM and oct-HSM keys", async () => {
  const rsa = await c.keyClient.createRsaKey(uniq("jsrsa"), { keySize: 2048, hsm: true });
  assert.equal(rsa.keyType, "RSA-HSM");
  assert.equal(rsa.key.n.length, 256);
  assert.equal(Buffer.from(rsa.key.e).toString("hex"), "010001");
  assert.equal(rsa.key.d, undefined);
  assert.ok(rsa.id.startsWith(`${c.creds.url}/keys/${rsa.name}/`), rsa.id);
  assert.equal(rsa.properties.enabled, true);
  assert.equal(rsa.properties.recoverableDays, 90);
  assert.equal(rsa.properties.recoveryLevel, "Recoverable+Purgeable");

  for (const [curve, size] of [["P-256", 32], ["P-256K", 32], ["P-384", 48], ["P-521", 66]]) {
    const ec = await c.keyClient.createEcKey(uniq("jsec"), { curve, hsm: true });
    assert.equal(ec.keyType, "EC-HSM");
    assert.equal(ec.key.crv, curve);
    assert.equal(ec.key.x.length, size, `${curve} x`);
    assert.equal(ec.key.y.length, size, `${curve} y`);
    assert.equal(ec.key.d, undefined);
  }

  for (const keySize of [128, 192, 256]) {
    const oct = await c.keyClient.createOctKey(uniq("jsoct"), { keySize, hsm: true });
    assert.equal(oct.keyType, "oct-HSM");
    assert.equal(oct.key.k, undefined, "oct key material must not be returned");
  }
});

test("get latest and by version, list with paging, update", async () => {
  const name = uniq("jsget");
  const v1 = await c.keyClient.createEcKey(name, { curve: "P-256", hsm: true });
  const v2 = await c.keyClient.createEcKey(name, { curve: "P-256", hsm: true });
  assert.notEqual(v1.properties.version, v2.properties.version);
  assert.equal((await c.keyClient.getKey(name)).id, v2.id);
  assert.equal((await c.keyClient.getKey(name, { version: v1.properties.version })).id, v1.id);

  const versions = [];
  for await (const page of c.keyClient.listPropertiesOfKeyVersions(name).byPage({ maxPageSize: 1 })) {
    assert.ok(page.length <= 1, `page of ${page.length} with maxPageSize 1`);
    versions.push(...page.map((p) => p.version));
  }
  assert.deepEqual(versions.sort(), [v1.properties.version, v2.properties.version].sort());

  const names = new Set();
  let pages = 0;
  for await (const page of c.keyClient.listPropertiesOfKeys().byPage({ maxPageSize: 2 })) {
    pages++;
    for (const p of page) names.add(p.name);
  }
  assert.ok(names.has(name), "created key missing from listPropertiesOfKeys");
  assert.ok(pages >= 2, `expected several pages, got ${pages}`);

  const updated = await c.keyClient.updateKeyProperties(name, v2.properties.version, {
    enabled: false,
    tags: { team: "js" },
  });
  assert.equal(updated.properties.enabled, false);
  assert.deepEqual(updated.properties.tags, { team: "js" });
  const got = await c.keyClient.getKey(name);
  assert.equal(got.properties.enabled, false);
  assert.deepEqual(got.properties.tags, { team: "js" });
});

test("delete poller, deleted key, purge", async () => {
  const name = uniq("jsdel");
  const key = await c.keyClient.createOctKey(name, { keySize: 256, hsm: true });
  const poller = await c.keyClient.beginDeleteKey(name, { intervalInMs: 200 });
  const deleted = await poller.pollUntilDone();
  assert.equal(deleted.name, name);
  assert.equal(deleted.properties.recoveryId, `${c.creds.url}/deletedkeys/${name}`);
  assert.ok(deleted.properties.deletedOn instanceof Date);
  assert.ok(deleted.properties.scheduledPurgeDate instanceof Date);
  const dk = await c.keyClient.getDeletedKey(name);
  assert.equal(dk.id, key.id);
  await expectStatus(c.keyClient.getKey(name), 404);
  await c.keyClient.purgeDeletedKey(name);
  await expectStatus(c.keyClient.getDeletedKey(name), 404);
  await expectStatus(c.keyClient.getKey(name), 404);
});

test("sign RS256, PS256 (RSA) and ES256, ES384 (EC), verified with node:crypto", async () => {
  const message = Buffer.from("coffer js conformance");
  const rsa = await c.keyClient.createRsaKey(uniq("jssig"), { keySize: 2048, hsm: true });
  const rsaClient = c.cryptoClient(rsa);
  const rsaPub = rsaPublicKey(rsa.key);
  for (const alg of ["RS256", "PS256"]) {
    c.recorder.take();
    const res = await rsaClient.sign(alg, sha(256, message));
    c.recorder.assertRemote("sign");
    assert.equal(res.result.length, 256);
    const key = alg === "PS256" ? { key: rsaPub, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : rsaPub;
    assert.ok(crypto.verify("sha256", message, key, Buffer.from(res.result)), `${alg} signature does not verify`);
  }
  for (const [curve, alg, bits, len] of [["P-256", "ES256", 256, 64], ["P-384", "ES384", 384, 96]]) {
    const ec = await c.keyClient.createEcKey(uniq("jsecsig"), { curve, hsm: true });
    const ecClient = c.cryptoClient(ec);
    c.recorder.take();
    const res = await ecClient.sign(alg, sha(bits, message));
    c.recorder.assertRemote("sign");
    assert.equal(res.result.length, len, `${alg} raw r||s length`);
    const ok = crypto.verify(`sha${bits}`, message, { key: ecPublicKey(ec.key), dsaEncoding: "ieee-p1363" }, Buffer.from(res.result));
    assert.ok(ok, `${alg} signature does not verify`);
    // verify(digest) is remote in the JS client
    const v = await ecClient.verify(alg, sha(bits, message), res.result);
    assert.equal(v.result, true);
    const bad = Buffer.from(res.result);
    bad[5] ^= 1;
    assert.equal((await ecClient.verify(alg, sha(bits, message), bad)).result, false);
  }
});

test("RSA-OAEP-256 encrypt (remote in JS) then decrypt via CryptographyClient, checked with the local key", async () => {
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  const fromB64u = (s) => new Uint8Array(Buffer.from(s, "base64url"));
  const imported = await c.keyClient.importKey(
    uniq("jsimprsa"),
    {
      kty: "RSA",
      keyOps: ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
      n: fromB64u(jwk.n), e: fromB64u(jwk.e), d: fromB64u(jwk.d), p: fromB64u(jwk.p), q: fromB64u(jwk.q),
      dp: fromB64u(jwk.dp), dq: fromB64u(jwk.dq), qi: fromB64u(jwk.qi),
    },
    { hardwareProtected: true },
  );
  assert.equal(imported.keyType, "RSA-HSM");
  assert.equal(imported.key.d, undefined);
  const client = c.cryptoClient(imported);
  const plaintext = crypto.randomBytes(32);
  c.recorder.take();
  const enc = await client.encrypt({ algorithm: "RSA-OAEP-256", plaintext });
  c.recorder.assertRemote("encrypt");
  const local = crypto.privateDecrypt(
    { key: privateKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    Buffer.from(enc.result),
  );
  assert.deepEqual(local, plaintext);
  const dec = await client.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: enc.result });
  c.recorder.assertRemote("decrypt");
  assert.deepEqual(Buffer.from(dec.result), plaintext);
});

test("A256KW wrapKey/unwrapKey on an imported oct key, byte-exact with id-aes256-wrap", async () => {
  const k = crypto.randomBytes(32);
  const imported = await c.keyClient.importKey(
    uniq("jsimpoct"),
    { kty: "oct", k: new Uint8Array(k), keyOps: ["wrapKey", "unwrapKey", "encrypt", "decrypt"] },
    { hardwareProtected: true },
  );
  assert.equal(imported.keyType, "oct-HSM");
  assert.equal(imported.key.k, undefined);
  const client = c.cryptoClient(imported);
  const cek = crypto.randomBytes(32);
  const iv = Buffer.from("A6A6A6A6A6A6A6A6", "hex");
  const cipher = crypto.createCipheriv("id-aes256-wrap", k, iv);
  const expected = Buffer.concat([cipher.update(cek), cipher.final()]);
  c.recorder.take();
  const wrapped = await client.wrapKey("A256KW", cek);
  c.recorder.assertRemote("wrapkey");
  assert.deepEqual(Buffer.from(wrapped.result), expected);
  const unwrapped = await client.unwrapKey("A256KW", expected);
  c.recorder.assertRemote("unwrapkey");
  assert.deepEqual(Buffer.from(unwrapped.result), cek);
});

test("getRandomBytes", async () => {
  const a = await c.keyClient.getRandomBytes(32);
  const b = await c.keyClient.getRandomBytes(32);
  assert.equal(a.length, 32);
  assert.equal(b.length, 32);
  assert.notDeepEqual(Buffer.from(a), Buffer.from(b));
  await expectStatus(c.keyClient.getRandomBytes(129), 400);
});

test("requests carry api%2Dversion and the token comes from the built-in authority", async () => {
  const seen = [];
  const { KeyClient } = await import("@azure/keyvault-keys");
  const kc = new KeyClient(c.creds.url, c.credential, {
    disableChallengeResourceVerification: true,
    serviceVersion: "7.4",
    additionalPolicies: [
      {
        policy: {
          name: "urlRecorder",
          async sendRequest(req, next) {
            const res = await next(req);
            seen.push([req.url, res.status]);
            return res;
          },
        },
        position: "perCall",
      },
    ],
  });
  const key = await kc.createEcKey(uniq("jsapiv"), { curve: "P-256", hsm: true });
  assert.equal(key.keyType, "EC-HSM");
  assert.ok(seen.some(([u, s]) => /[?&]api(%2D|-)version=7\.4(&|$)/i.test(u) && s === 200),
    `no successful request with api-version 7.4: ${JSON.stringify(seen)}`);
  const token = await c.credential.getToken(`${c.creds.url}/.default`);
  assert.ok(token && token.token && token.expiresOnTimestamp > Date.now() + 300_000);
});

test("guard: the JS client encrypts RSA-OAEP locally; the server decrypts it", async () => {
  const rsa = await c.keyClient.createRsaKey(uniq("jslocal"), { keySize: 2048, hsm: true });
  const client = c.cryptoClient(rsa); // constructed from the KeyVaultKey: has the public JWK
  const plaintext = crypto.randomBytes(24);
  c.recorder.take();
  const enc = await client.encrypt({ algorithm: "RSA-OAEP", plaintext });
  const calls = c.recorder.take();
  assert.equal(calls.filter((x) => x.method === "POST").length, 0, `local encrypt reached the server: ${JSON.stringify(calls)}`);
  const dec = await client.decrypt({ algorithm: "RSA-OAEP", ciphertext: enc.result });
  c.recorder.assertRemote("decrypt");
  assert.deepEqual(Buffer.from(dec.result), plaintext);
});
