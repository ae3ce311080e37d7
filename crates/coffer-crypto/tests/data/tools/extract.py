# Extracts small subsets of published test vectors (shipped in the PyPI package cryptography-vectors 50.0.2)
# into JSON for crates/coffer-crypto/tests/data. Run: python3 extract.py <cryptography_vectors dir> <out dir>
import json, os, re, sys, hashlib
from cryptography.hazmat.primitives.asymmetric import rsa as crsa

src, out = sys.argv[1], sys.argv[2]

def blocks(path):
    """Yields (section dict, record dict) for CAVP-style files."""
    section = {}
    rec = {}
    def flush():
        nonlocal rec
        if rec:
            r = dict(rec); rec = {}
            return r
        return None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith('#'):
                continue
            if line.startswith('['):
                r = flush()
                if r: yield dict(section), r
                parts = line.strip('[]').split(',')
                if any('=' not in part for part in parts):
                    section = {k: v for k, v in section.items() if v is not True}
                for part in parts:
                    if '=' in part:
                        k, v = part.split('=', 1); section[k.strip()] = v.strip()
                    else:
                        section[part.strip()] = True
                continue
            if not line:
                r = flush()
                if r: yield dict(section), r
                continue
            if line == 'FAIL':
                rec['FAIL'] = True; continue
            if '=' in line:
                k, v = line.split('=', 1); rec[k.strip()] = v.strip()
    r = flush()
    if r: yield dict(section), r

def even(v):
    if isinstance(v, str) and len(v) % 2 and re.fullmatch(r'[0-9a-fA-F]+', v):
        return '0' + v
    return v

def dump(name, source, vectors, note=None):
    vectors = [{k: even(v) for k, v in vec.items()} for vec in vectors]
    doc = {"source": source}
    if note: doc["note"] = note
    doc["vectors"] = vectors
    with open(os.path.join(out, name), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    print(name, len(vectors))

# ---- NIST SP 800-38F KW / KWP (CAVP) ----
kw = []
for mode in ['KW', 'KWP']:
    for d in ['AE', 'AD']:
        for bits in [128, 192, 256]:
            fn = f'{mode}_{d}_{bits}.txt'
            per = {}
            for sec, r in blocks(os.path.join(src, 'keywrap/kwtestvectors', fn)):
                if 'K' not in r: continue
                plen = int(sec['PLAINTEXT LENGTH'])
                if plen > 512: continue
                n = per.get(plen, 0)
                if n >= (2 if d == 'AE' else 4): continue
                per[plen] = n + 1
                kw.append({"file": fn, "count": int(r['COUNT']), "mode": mode, "direction": "wrap" if d == 'AE' else "unwrap",
                           "kek": r['K'], "plaintext": r.get('P'), "ciphertext": r['C'], "fail": bool(r.get('FAIL'))})
dump('nist_sp800_38f_kw.json', 'NIST CAVP SP 800-38F key wrap vectors (KW_AE/KW_AD/KWP_AE/KWP_AD *_128/192/256.txt), subset: plaintexts up to 512 bits, first 2 (wrap) or 4 (unwrap, incl. FAIL) per length', kw)

# ---- NIST GCM (CAVP gcmEncryptExtIV / gcmDecrypt) ----
gcm = []
for kind in ['EncryptExtIV', 'Decrypt']:
    for bits in [128, 192, 256]:
        fn = f'gcm{kind}{bits}.rsp'
        per = {}
        for sec, r in blocks(os.path.join(src, 'ciphers/AES/GCM', fn)):
            if 'Key' not in r: continue
            if sec.get('IVlen') != '96' or sec.get('Taglen') != '128': continue
            if sec['PTlen'] not in ('0', '128', '408') or sec['AADlen'] not in ('0', '160', '720'): continue
            keyt = (sec['PTlen'], sec['AADlen'])
            n = per.get(keyt, 0)
            lim = 1 if kind == 'EncryptExtIV' else 3
            if n >= lim: continue
            per[keyt] = n + 1
            gcm.append({"file": fn, "count": int(r['Count']), "key": r['Key'], "iv": r['IV'], "aad": r['AAD'],
                        "plaintext": None if r.get('FAIL') else r['PT'], "ciphertext": r['CT'], "tag": r['Tag'], "fail": bool(r.get('FAIL'))})
dump('nist_cavp_gcm.json', 'NIST CAVP gcmEncryptExtIV{128,192,256}.rsp and gcmDecrypt{128,192,256}.rsp, subset: IVlen 96, Taglen 128, PTlen 0/128/408, AADlen 0/160/720, first 1 (encrypt) or 3 (decrypt, incl. FAIL) per (PTlen, AADlen)', gcm)

# ---- NIST CAVP CBC MMT ----
cbc = []
for bits in [128, 192, 256]:
    fn = f'CBCMMT{bits}.rsp'
    for sec, r in blocks(os.path.join(src, 'ciphers/AES/CBC', fn)):
        if 'KEY' not in r or int(r['COUNT']) > 3: continue
        cbc.append({"file": fn, "direction": "encrypt" if 'ENCRYPT' in sec else "decrypt", "count": int(r['COUNT']),
                    "key": r['KEY'], "iv": r['IV'], "plaintext": r['PLAINTEXT'], "ciphertext": r['CIPHERTEXT']})
dump('nist_cavp_cbc_mmt.json', 'NIST CAVP CBCMMT{128,192,256}.rsp (multi-block message test), COUNT 0-3 of each direction', cbc)

# ---- ECDSA SigGen (FIPS 186-3 P-curves, and secp256k1) ----
ec = []
want = {('P-256', 'SHA-256'): 'P-256', ('P-384', 'SHA-384'): 'P-384', ('P-521', 'SHA-512'): 'P-521'}
per = {}
for sec, r in blocks(os.path.join(src, 'asymmetric/ECDSA/FIPS_186-3/SigGen.txt')):
    key = next((v for (c, h), v in want.items() if c in sec and h in sec), None)
    if not key or 'd' not in r: continue
    if per.get(key, 0) >= 5: continue
    per[key] = per.get(key, 0) + 1
    ec.append({"file": "FIPS_186-3/SigGen.txt", "curve": key, "msg": r['Msg'], "d": r['d'], "qx": r['Qx'], "qy": r['Qy'], "r": r['R'], "s": r['S']})
n = 0
for sec, r in blocks(os.path.join(src, 'asymmetric/ECDSA/SECP256K1/SigGen.txt')):
    if 'K-256' not in sec or 'SHA-256' not in sec or 'd' not in r: continue
    if n >= 5: break
    n += 1
    ec.append({"file": "SECP256K1/SigGen.txt", "curve": "P-256K", "msg": r['Msg'], "d": r['d'], "qx": r['Qx'], "qy": r['Qy'], "r": r['R'], "s": r['S']})
dump('ecdsa_siggen.json', 'NIST CAVP FIPS 186-3 ECDSA SigGen.txt ([P-256,SHA-256], [P-384,SHA-384], [P-521,SHA-512]) and pyca/cryptography SECP256K1/SigGen.txt ([K-256,SHA-256]), first 5 each; odd-length hex integers were given one leading zero nibble', ec)

# ---- RSA PKCS#1 v1.5 SigGen (FIPS 186-2 text with d) ----
def crt(n, e, d):
    p, q = crsa.rsa_recover_prime_factors(n, e, d)
    if p < q: p, q = q, p
    return p, q, d % (p - 1), d % (q - 1), pow(q, -1, p)
def h(x): 
    s = format(x, 'x'); return ('0' + s) if len(s) % 2 else s
rsa_sig = []
cur = None
per = {}
for sec, r in blocks(os.path.join(src, 'asymmetric/RSA/FIPS_186-2/SigGen15_186-2.txt')):
    if 'n' in r:
        cur = {'n': int(r['n'], 16)}
        continue
    if 'e' in r and 'd' in r:
        cur['e'] = int(r['e'], 16); cur['d'] = int(r['d'], 16)
        continue
    if 'SHAAlg' not in r: continue
    mod = int(sec['mod'])
    if mod not in (2048, 3072) or r['SHAAlg'] not in ('SHA256', 'SHA384', 'SHA512'): continue
    key = (mod, r['SHAAlg'])
    if per.get(key, 0) >= 2: continue
    per[key] = per.get(key, 0) + 1
    assert cur['n'].bit_length() == mod
    p, q, dp, dq, qi = crt(cur['n'], cur['e'], cur['d'])
    rsa_sig.append({"mod": mod, "sha": r['SHAAlg'], "n": h(cur['n']), "e": h(cur['e']), "d": h(cur['d']), "p": h(p), "q": h(q), "dp": h(dp), "dq": h(dq), "qi": h(qi), "msg": r['Msg'], "s": r['S'].lower()})
dump('rsa_pkcs1v15_siggen.json', 'NIST CAVP FIPS 186-2 SigGen15_186-2.txt (RSASSA-PKCS1-v1_5), mod 2048/3072 with SHA-256/384/512, first 2 each. n, e, d, msg and s are from the file; p, q, dp, dq, qi were recovered from (n, e, d) with pyca/cryptography rsa_recover_prime_factors', rsa_sig)

# ---- RSA decryption (RSAES-OAEP, RSAES-PKCS1-v1_5) with 2048-bit keys ----
def labelled(text):
    """Returns [(label, hex)] for '# Label:' lines followed by hex lines (blank lines inside a value are skipped)."""
    items = []
    label, buf = None, []
    def flush():
        if label is not None and buf:
            items.append((label, ''.join(buf)))
    for line in text.splitlines():
        m = re.match(r'^#\s*(.+?):\s*$', line)
        if line.startswith('#'):
            flush()
            label, buf = (m.group(1) if m else None), []
            continue
        if label is not None and re.fullmatch(r'[0-9a-fA-F ]+', line.strip()):
            buf.append(line.strip().replace(' ', '').lower())
    flush()
    return items

def key_and_pairs(items):
    key = {}
    names = {'Public exponent': 'e', 'Prime 1': 'p', 'Prime 2': 'q', 'Prime exponent 1': 'dp', 'Prime exponent 2': 'dq', 'Coefficient': 'qi'}
    seen_exp = 0
    pairs = []
    msg = None
    for k, v in items:
        if k == 'Modulus': key['n'] = v
        elif k == 'Exponent':
            seen_exp += 1
            if seen_exp == 1: key['e'] = v
            else: key['d'] = v
        elif k in names: key[names[k]] = v
        elif k == 'Message': msg = v
        elif k == 'Encryption': pairs.append((msg, v))
    return key, pairs

def check_key(key):
    n, e, d, p, q = (int(key[x], 16) for x in ['n', 'e', 'd', 'p', 'q'])
    assert p * q == n and (d * e) % ((p - 1) * (q - 1) // __import__('math').gcd(p - 1, q - 1)) == 1
    assert int(key['dp'], 16) == d % (p - 1) and int(key['dq'], 16) == d % (q - 1) and int(key['qi'], 16) * q % p == 1
    return n.bit_length()

dec = []
t = open(os.path.join(src, 'asymmetric/RSA/pkcs-1v2-1d2-vec/oaep-vect.txt')).read()
part = t[t.index('# Example 10: A 2048-bit RSA key pair'):]
key, pairs = key_and_pairs(labelled(part))
assert check_key(key) == 2048
for m, c in pairs[:3]:
    dec.append({"file": "pkcs-1v2-1d2-vec/oaep-vect.txt (Example 10)", "alg": "RSA-OAEP", **key, "message": m, "ciphertext": c})
t = open(os.path.join(src, 'asymmetric/RSA/pkcs1v15crypt-vectors.txt')).read()
part = t[t.index('# Example 15: A 2048-bit RSA key pair'):]
key, pairs = key_and_pairs(labelled(part))
assert check_key(key) == 2048
for m, c in pairs[:3]:
    dec.append({"file": "pkcs1v15crypt-vectors.txt (Example 15)", "alg": "RSA1_5", **key, "message": m, "ciphertext": c})
t = open(os.path.join(src, 'asymmetric/RSA/oaep-custom/oaep-sha256-sha256.txt')).read()
for chunk in t.split('# =============================================')[1:]:
    key, pairs = key_and_pairs(labelled(chunk))
    if 'n' in key and int(key['n'], 16).bit_length() >= 2048:
        assert check_key(key) >= 2048
        for m, c in pairs[:3]:
            dec.append({"file": "oaep-custom/oaep-sha256-sha256.txt", "alg": "RSA-OAEP-256", **key, "message": m, "ciphertext": c})
        break
dump('rsa_decrypt.json', 'RSA decryption vectors with 2048-bit keys: PKCS#1 v2.1 oaep-vect.txt Example 10 (RSA-OAEP, SHA-1), pkcs1v15crypt-vectors.txt Example 15 (RSA1_5), pyca/cryptography oaep-custom/oaep-sha256-sha256.txt (RSA-OAEP-256, derived from the NIST OAEP vectors and checked against Bouncy Castle); first 3 messages each', dec)
