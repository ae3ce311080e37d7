# Generates interop vectors: RSASSA-PSS signatures (MGF1 with the same hash, salt length = hash length, as Azure PS*
# uses) made by pyca/cryptography (OpenSSL), over fixed messages, with the 2048-bit key of PKCS#1 v2.1 oaep-vect.txt
# Example 10. PSS is randomized, so these are verify-only vectors.
import json, cryptography
from cryptography.hazmat.primitives.asymmetric import rsa, padding
from cryptography.hazmat.primitives import hashes
import os, sys
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '')
key=[v for v in json.load(open(D+'rsa_decrypt.json'))['vectors'] if v['alg']=='RSA-OAEP'][0]
i=lambda k:int(key[k],16)
priv=rsa.RSAPrivateNumbers(i('p'),i('q'),i('d'),i('dp'),i('dq'),i('qi'),rsa.RSAPublicNumbers(i('e'),i('n'))).private_key()
out=[]
for alg,h in [('PS256',hashes.SHA256()),('PS384',hashes.SHA384()),('PS512',hashes.SHA512())]:
    for msg in [b'coffer interop vector', b'']:
        sig=priv.sign(msg,padding.PSS(mgf=padding.MGF1(h),salt_length=h.digest_size),h)
        out.append({"alg":alg,"msg":msg.hex(),"signature":sig.hex()})
doc={"source":f"Generated with pyca/cryptography {cryptography.__version__} (OpenSSL backend): RSASSA-PSS, MGF1 with the signing hash, salt length = hash length. Key: PKCS#1 v2.1 oaep-vect.txt Example 10 (2048-bit); components below.",
     "key":{k:key[k] for k in ['n','e','d','p','q','dp','dq','qi']},"vectors":out}
json.dump(doc,open(D+'pyca_rsa_pss.json','w'),indent=1); open(D+'pyca_rsa_pss.json','a').write('\n')
print(len(out))
