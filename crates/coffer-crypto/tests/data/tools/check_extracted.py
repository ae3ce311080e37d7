# Re-checks every vector in ../*.json that was extracted from cryptography-vectors against pyca/cryptography.
import json, hashlib
from cryptography.hazmat.primitives.keywrap import aes_key_wrap, aes_key_unwrap, aes_key_wrap_with_padding, aes_key_unwrap_with_padding, InvalidUnwrap
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.asymmetric import rsa, padding, ec, utils
from cryptography.hazmat.primitives import hashes
import os, sys
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '')
H=bytes.fromhex
def load(n): return json.load(open(D+n))['vectors']
ok=0
for v in load('nist_sp800_38f_kw.json'):
    k=H(v['kek']); c=H(v['ciphertext'])
    w, u = (aes_key_wrap, aes_key_unwrap) if v['mode']=='KW' else (aes_key_wrap_with_padding, aes_key_unwrap_with_padding)
    if v['fail']:
        try: u(k,c); raise SystemExit('unwrap should fail')
        except InvalidUnwrap: pass
    else:
        assert u(k,c)==H(v['plaintext']); assert w(k,H(v['plaintext']))==c
    ok+=1
for v in load('nist_cavp_gcm.json'):
    g=AESGCM(H(v['key']))
    try:
        pt=g.decrypt(H(v['iv']),H(v['ciphertext'])+H(v['tag']),H(v['aad']) or None)
        assert not v['fail'] and pt==H(v['plaintext'])
    except Exception as e:
        assert v['fail'], e
    ok+=1
for v in load('nist_cavp_cbc_mmt.json'):
    c=Cipher(algorithms.AES(H(v['key'])),modes.CBC(H(v['iv']))).encryptor()
    assert c.update(H(v['plaintext']))+c.finalize()==H(v['ciphertext']); ok+=1
curves={'P-256':(ec.SECP256R1(),hashes.SHA256()),'P-384':(ec.SECP384R1(),hashes.SHA384()),'P-521':(ec.SECP521R1(),hashes.SHA512()),'P-256K':(ec.SECP256K1(),hashes.SHA256())}
for v in load('ecdsa_siggen.json'):
    cv,hh=curves[v['curve']]
    priv=ec.derive_private_key(int(v['d'],16),cv)
    pn=priv.public_key().public_numbers(); assert pn.x==int(v['qx'],16) and pn.y==int(v['qy'],16)
    priv.public_key().verify(utils.encode_dss_signature(int(v['r'],16),int(v['s'],16)),H(v['msg']),ec.ECDSA(hh)); ok+=1
def rkey(v):
    i=lambda k:int(v[k],16)
    return rsa.RSAPrivateNumbers(i('p'),i('q'),i('d'),i('dp'),i('dq'),i('qi'),rsa.RSAPublicNumbers(i('e'),i('n'))).private_key()
for v in load('rsa_pkcs1v15_siggen.json'):
    hh={'SHA256':hashes.SHA256(),'SHA384':hashes.SHA384(),'SHA512':hashes.SHA512()}[v['sha']]
    assert rkey(v).sign(H(v['msg']),padding.PKCS1v15(),hh)==H(v['s']); ok+=1
for v in load('rsa_decrypt.json'):
    pad={'RSA1_5':padding.PKCS1v15(),'RSA-OAEP':padding.OAEP(padding.MGF1(hashes.SHA1()),hashes.SHA1(),None),'RSA-OAEP-256':padding.OAEP(padding.MGF1(hashes.SHA256()),hashes.SHA256(),None)}[v['alg']]
    assert rkey(v).decrypt(H(v['ciphertext']),pad)==H(v['message']); ok+=1
print('extracted vectors verified with pyca/cryptography:', ok)
