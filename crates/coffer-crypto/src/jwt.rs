//! JWTs for the built-in token service (ES256, our own key) and validation of bearer tokens and client
//! assertions. Built on jsonwebtoken (aws-lc-rs backend). Time is passed in (`now`, Unix seconds).
//!
//! jsonwebtoken checks the signature, the algorithm, `iss` and `aud`; its own `exp`/`nbf` checks read the system
//! clock, so they are switched off and done here against the caller's `now`. Claims are checked a second time
//! here as well, so a change in jsonwebtoken's defaults cannot silently drop a check.
use std::collections::HashSet;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

use crate::{Error, SecretBytes, hash};

/// Algorithms accepted on bearer tokens. Never `none` (jsonwebtoken cannot even parse it) or HS*.
const BEARER_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Clock skew allowed on client assertions (RFC 7523), seconds.
pub const CLIENT_ASSERTION_LEEWAY: u64 = 300;

/// P-256 coordinate length.
const P256_COORDINATE_LEN: usize = 32;

/// The token service's ES256 signing key.
pub struct TokenSigningKey {
    pkcs8: SecretBytes,
    encoding: EncodingKey,
    kid: String,
    /// base64url x coordinate.
    x: String,
    /// base64url y coordinate.
    y: String,
}

impl std::fmt::Debug for TokenSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigningKey(..)")
    }
}

impl TokenSigningKey {
    /// A new P-256 key.
    pub fn generate() -> Result<Self, Error> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| Error::Unspecified)?;
        let doc = pair.to_pkcs8v1().map_err(|_| Error::Unspecified)?;
        Self::from_pkcs8(&SecretBytes::new(doc.as_ref().to_vec()))
    }
    /// Loads from PKCS#8 DER (as produced by `to_pkcs8`).
    pub fn from_pkcs8(der: &SecretBytes) -> Result<Self, Error> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.expose_secret())
            .map_err(|_| Error::InvalidKey("token signing key must be a P-256 PKCS#8 private key"))?;
        // Uncompressed SEC1 point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let x = point.get(1..1 + P256_COORDINATE_LEN).ok_or(Error::Unspecified)?;
        let y = point
            .get(1 + P256_COORDINATE_LEN..1 + 2 * P256_COORDINATE_LEN)
            .ok_or(Error::Unspecified)?;
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        let kid = ec_p256_thumbprint(&x, &y);
        Ok(Self {
            pkcs8: der.duplicate(),
            encoding: EncodingKey::from_ec_der(der.expose_secret()),
            kid,
            x,
            y,
        })
    }
    /// PKCS#8 DER, for sealed storage.
    pub fn to_pkcs8(&self) -> Result<SecretBytes, Error> {
        Ok(self.pkcs8.duplicate())
    }
    /// The key id: the RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn kid(&self) -> &str {
        &self.kid
    }
    /// Signs `claims` with header `{"alg":"ES256","typ":"JWT","kid":…}`.
    pub fn sign(&self, claims: &Value) -> Result<String, Error> {
        if !claims.is_object() {
            return Err(Error::InvalidParameter("JWT claims must be a JSON object"));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|_| Error::Unspecified)
    }
    /// The public JWK: `{"kty":"EC","crv":"P-256","x","y","kid","use":"sig","alg":"ES256"}`.
    pub fn public_jwk(&self) -> Value {
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }
}

/// RFC 7638 thumbprint of a P-256 public key: SHA-256 over the required members in lexicographic order.
fn ec_p256_thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(hash::sha256(canonical.as_bytes()))
}

/// What a bearer token must satisfy.
#[derive(Debug)]
pub struct TokenValidation<'a> {
    /// Exact `iss`.
    pub issuer: &'a str,
    /// `aud` must equal one of these.
    pub audiences: &'a [String],
    /// Now, Unix seconds.
    pub now: u64,
    /// Allowed clock skew for `exp`/`nbf`, seconds.
    pub leeway: u64,
}

/// The unverified parts of a JWT, for routing only (which issuer, which key): header `alg` and `kid`, and the
/// claims. Nothing read here may be trusted before [`verify`] succeeds.
#[derive(Debug)]
pub struct UnverifiedToken {
    pub alg: Option<String>,
    pub kid: Option<String>,
    pub claims: Value,
}

/// Decodes a JWT's header and claims without checking anything.
pub fn peek(token: &str) -> Result<UnverifiedToken, Error> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Error::TokenRejected("not a compact JWS".into()));
    };
    let decode = |s: &str| -> Result<Value, Error> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| Error::TokenRejected("bad base64url".into()))?;
        serde_json::from_slice(&bytes).map_err(|_| Error::TokenRejected("bad JSON".into()))
    };
    let header = decode(h)?;
    let claims = decode(c)?;
    let field = |k: &str| header.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(UnverifiedToken {
        alg: field("alg"),
        kid: field("kid"),
        claims,
    })
}

/// Verifies a JWT against a JWK Set (`{"keys":[…]}`): picks the key by `kid`; algorithms allowed: RS256, RS384,
/// RS512, PS256, PS384, PS512, ES256, ES384 (never `none` or HS*). Checks signature, `iss`, `aud`, `exp`
/// (required) and `nbf` (if present). Returns the claims.
///
/// A token without `kid` is accepted only when the set holds exactly one key. Keys in the set that jsonwebtoken
/// cannot parse are ignored. A key whose `alg` or `use` is present must allow this token's algorithm and
/// signatures; an EC key's curve must match the algorithm (ES256: P-256, ES384: P-384).
pub fn verify(token: &str, jwks: &Value, validation: &TokenValidation<'_>) -> Result<Value, Error> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| rejected("malformed token or unsupported algorithm"))?;
    let alg = header.alg;
    if !BEARER_ALGORITHMS.contains(&alg) {
        return Err(rejected("algorithm not allowed"));
    }
    let jwk = select_jwk(jwks, header.kid.as_deref())?;
    check_jwk_fits(&jwk, alg)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| rejected("unusable key in the key set"))?;

    let mut checks = jsonwebtoken_validation(alg);
    checks.set_issuer(&[validation.issuer]);
    checks.set_audience(validation.audiences);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &checks)
        .map_err(map_jsonwebtoken_error)?
        .claims;

    if claim_str(&claims, "iss")? != validation.issuer {
        return Err(rejected("issuer not accepted"));
    }
    check_audience(&claims, |aud| validation.audiences.iter().any(|a| a == aud))?;
    check_times(&claims, validation.now, validation.leeway)?;
    Ok(claims)
}

/// Verifies an attestation token (Secure Key Release `target`) against its authority's JWK Set: the key by `kid`,
/// the algorithm among `algorithms` (and never `none` or HS*), the signature, `exp` (required), `nbf` and `iat`
/// (if present, not in the future beyond `leeway`). There is no audience. The issuer is compared by the caller
/// (normalised, see the release policy rules). Returns the claims. A `jku` header is ignored: the key set comes
/// from configuration only.
pub fn verify_attestation(
    token: &str,
    jwks: &Value,
    algorithms: &[String],
    now: u64,
    leeway: u64,
) -> Result<Value, Error> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| rejected("malformed token or unsupported algorithm"))?;
    let alg = header.alg;
    if !BEARER_ALGORITHMS.contains(&alg) || !algorithms.iter().any(|a| *a == format!("{alg:?}")) {
        return Err(rejected("algorithm not allowed"));
    }
    let jwk = select_jwk(jwks, header.kid.as_deref())?;
    check_jwk_fits(&jwk, alg)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| rejected("unusable key in the key set"))?;
    let mut checks = jsonwebtoken_validation(alg);
    checks.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &checks)
        .map_err(map_jsonwebtoken_error)?
        .claims;
    claim_str(&claims, "iss")?;
    check_times(&claims, now, leeway)?;
    if let Some(iat) = numeric_date(&claims, "iat")?
        && now.saturating_add(leeway) < iat
    {
        return Err(rejected("token issued in the future"));
    }
    Ok(claims)
}

/// Verifies an OAuth2 client assertion (RFC 7523) signed with the private key of one of `certificates_der`
/// (RS256 with header `x5t` = base64url SHA-1 of the DER, or PS256 with `x5t#S256`; the header thumbprint selects
/// the certificate). Checks `aud` == `audience`, `iss` == `sub` == `client_id`, `exp` (required, with 300 s leeway)
/// and `nbf` if present. Returns the claims.
///
/// Either algorithm is accepted with either thumbprint. When both `x5t#S256` and `x5t` are present they must
/// name the same certificate. The certificate's own validity period is not checked here.
pub fn verify_client_assertion(
    token: &str,
    certificates_der: &[Vec<u8>],
    audience: &str,
    client_id: &str,
    now: u64,
) -> Result<Value, Error> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| rejected("malformed token or unsupported algorithm"))?;
    let alg = header.alg;
    if !matches!(alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(rejected("client assertions must use RS256 or PS256"));
    }
    let certificate = select_certificate(&header, certificates_der)?;
    let public_key = certificate_rsa_public_key(certificate)?;
    // jsonwebtoken's "RSA DER" is the PKCS#1 RSAPublicKey, which is what aws-lc-rs's `PublicKey::as_ref` gives.
    let key = DecodingKey::from_rsa_der(public_key.as_ref());

    let mut checks = jsonwebtoken_validation(alg);
    checks.set_issuer(&[client_id]);
    checks.set_audience(&[audience]);
    checks.sub = Some(client_id.to_owned());
    let claims = jsonwebtoken::decode::<Value>(token, &key, &checks)
        .map_err(map_jsonwebtoken_error)?
        .claims;

    if claim_str(&claims, "iss")? != client_id {
        return Err(rejected("issuer must be the client id"));
    }
    if claim_str(&claims, "sub")? != client_id {
        return Err(rejected("subject must be the client id"));
    }
    check_audience(&claims, |aud| aud == audience)?;
    check_times(&claims, now, CLIENT_ASSERTION_LEEWAY)?;
    Ok(claims)
}

/// jsonwebtoken validation for one algorithm, with its clock-based checks off (done in `check_times`) and no
/// required claims (presence is checked here).
fn jsonwebtoken_validation(alg: Algorithm) -> Validation {
    let mut checks = Validation::new(alg);
    checks.validate_exp = false;
    checks.validate_nbf = false;
    checks.validate_aud = true;
    checks.required_spec_claims = HashSet::new();
    checks.leeway = 0;
    checks
}

fn rejected(reason: &str) -> Error {
    Error::TokenRejected(reason.to_owned())
}

fn map_jsonwebtoken_error(err: jsonwebtoken::errors::Error) -> Error {
    let reason = match err.kind() {
        ErrorKind::InvalidSignature => "invalid signature",
        ErrorKind::InvalidIssuer => "issuer not accepted",
        ErrorKind::InvalidAudience => "audience not accepted",
        ErrorKind::InvalidSubject => "subject not accepted",
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => "algorithm not allowed for this key",
        ErrorKind::InvalidKeyFormat | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey => "unusable key",
        _ => "malformed token",
    };
    rejected(reason)
}

/// Picks the verification key: by `kid`, or the only key when the token has no `kid`.
fn select_jwk(jwks: &Value, kid: Option<&str>) -> Result<Jwk, Error> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(rejected("key set has no keys array"))?;
    match kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            .find_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .ok_or(rejected("no key with the token's kid")),
        None => match keys.as_slice() {
            [only] => serde_json::from_value::<Jwk>(only.clone()).map_err(|_| rejected("unusable key in the key set")),
            _ => Err(rejected(
                "token has no kid and the key set does not hold exactly one key",
            )),
        },
    }
}

/// The key must be meant for signatures, allow this algorithm, and (for EC) be on the algorithm's curve.
fn check_jwk_fits(jwk: &Jwk, alg: Algorithm) -> Result<(), Error> {
    if let Some(key_use) = &jwk.common.public_key_use
        && *key_use != PublicKeyUse::Signature
    {
        return Err(rejected("key is not meant for signatures"));
    }
    if let Some(key_alg) = &jwk.common.key_algorithm
        && key_alg.to_string() != format!("{alg:?}")
    {
        return Err(rejected("key does not allow the token's algorithm"));
    }
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) => true,
        (AlgorithmParameters::RSA(_), Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => ec.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => ec.curve == EllipticCurve::P384,
        _ => false,
    };
    if !fits {
        return Err(rejected("key type or curve does not match the token's algorithm"));
    }
    Ok(())
}

/// Finds the certificate named by the header's `x5t#S256` and/or `x5t`.
fn select_certificate<'c>(header: &Header, certificates_der: &'c [Vec<u8>]) -> Result<&'c [u8], Error> {
    let by_sha256 = match &header.x5t_s256 {
        Some(t) => {
            let t = decode_thumbprint(t)?;
            Some(
                certificates_der
                    .iter()
                    .find(|c| hash::sha256(c).as_slice() == t.as_slice()),
            )
        }
        None => None,
    };
    let by_sha1 = match &header.x5t {
        Some(t) => {
            let t = decode_thumbprint(t)?;
            Some(
                certificates_der
                    .iter()
                    .find(|c| hash::sha1(c).as_slice() == t.as_slice()),
            )
        }
        None => None,
    };
    let chosen = match (by_sha256, by_sha1) {
        (None, None) => return Err(rejected("client assertion header has no x5t or x5t#S256")),
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a), Some(b)) if a == b => a,
        (Some(_), Some(_)) => return Err(rejected("x5t and x5t#S256 name different certificates")),
    };
    chosen
        .map(Vec::as_slice)
        .ok_or(rejected("no registered certificate matches the thumbprint"))
}

/// Thumbprints are base64url without padding per RFC 7515; padded and standard-alphabet forms are accepted too.
fn decode_thumbprint(t: &str) -> Result<Vec<u8>, Error> {
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(t).ok())
        .ok_or(rejected("thumbprint is not base64"))
}

/// The RSA public key in a certificate's SubjectPublicKeyInfo (2048..=8192 bits, as AWS-LC accepts).
fn certificate_rsa_public_key(der: &[u8]) -> Result<aws_lc_rs::rsa::PublicKey, Error> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| rejected("registered certificate does not parse"))?;
    aws_lc_rs::rsa::PublicKey::from_der(cert.public_key().raw)
        .map_err(|_| rejected("registered certificate has no usable RSA key (2048 bits or more)"))
}

fn claim_str<'v>(claims: &'v Value, name: &'static str) -> Result<&'v str, Error> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::TokenRejected(format!("claim {name} missing or not a string")))
}

/// `aud` is a string or an array of strings; one of them must be accepted.
fn check_audience(claims: &Value, accepted: impl Fn(&str) -> bool) -> Result<(), Error> {
    let ok = match claims.get("aud") {
        Some(Value::String(aud)) => accepted(aud.as_str()),
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
        _ => return Err(rejected("claim aud missing")),
    };
    if !ok {
        return Err(rejected("audience not accepted"));
    }
    Ok(())
}

/// `exp` is required: the token is rejected from `exp + leeway` on. `nbf`, if present, must be at most
/// `now + leeway`.
fn check_times(claims: &Value, now: u64, leeway: u64) -> Result<(), Error> {
    let exp = numeric_date(claims, "exp")?.ok_or(rejected("claim exp missing"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(rejected("token expired"));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(rejected("token not yet valid"));
    }
    Ok(())
}

/// A NumericDate claim as whole seconds; fractions are truncated. Negative or non-numeric values are errors.
fn numeric_date(claims: &Value, name: &'static str) -> Result<Option<u64>, Error> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    if let Some(v) = value.as_u64() {
        return Ok(Some(v));
    }
    match value.as_f64() {
        Some(v) if (0.0..1.8e19).contains(&v) => {
            // Truncation toward zero is the intended rounding for a NumericDate with a fraction.
            let secs = v as u64;
            Ok(Some(secs))
        }
        _ => Err(Error::TokenRejected(format!("claim {name} is not a valid NumericDate"))),
    }
}
