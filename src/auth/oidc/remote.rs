//! What berth asks of an OpenID provider, and the check of what it answers: the discovery
//! document and the JWKS (each cached an hour; an ID token signed with an unknown `kid`
//! fetches the JWKS again, at most once every [`JWKS_REFETCH_GAP`]), the code exchange at
//! the token endpoint, and the ID token's verification.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, Jwk, PublicKeyUse},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use super::{OidcError, Provider, refused};

/// How long a discovery document or JWKS is used before it is fetched again.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// The least time between two JWKS fetches for an unknown `kid`.
pub const JWKS_REFETCH_GAP: Duration = Duration::from_secs(30);
/// The largest answer read from a provider.
const MAX_BODY: usize = 1 << 20;

/// The signature algorithms an ID token may use: asymmetric only (no `none`, no HMAC
/// keyed by the client secret).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The parts of a discovery document berth uses.
#[derive(Debug, Deserialize)]
pub(super) struct Metadata {
    issuer: String,
    pub(super) authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
}

pub(super) struct Cached<T> {
    value: Arc<T>,
    fetched: Instant,
}

/// A provider's public keys (those jsonwebtoken can use; others are skipped).
pub(super) struct Keys(pub(super) Vec<Jwk>);

impl Provider {
    /// The discovery document, cached.
    pub(super) async fn metadata(&self) -> Result<Arc<Metadata>, OidcError> {
        let mut cached = self.metadata.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.fetched.elapsed() < CACHE_TTL) {
            return Ok(Arc::clone(&c.value));
        }
        let issuer = self.cfg.issuer.trim_end_matches('/');
        let meta: Metadata = self.get_json(&format!("{issuer}/.well-known/openid-configuration")).await?;
        if meta.issuer.trim_end_matches('/') != issuer {
            return Err(OidcError::Unavailable(format!(
                "the provider's discovery document names the issuer {:?}, not the configured {issuer:?}",
                meta.issuer
            )));
        }
        let meta = Arc::new(meta);
        *cached = Some(Cached { value: Arc::clone(&meta), fetched: Instant::now() });
        Ok(meta)
    }

    /// The JWKS, cached; `refresh` fetches it again unless that was done just now.
    async fn keys(&self, meta: &Metadata, refresh: bool) -> Result<Arc<Keys>, OidcError> {
        let mut cached = self.keys.lock().await;
        if let Some(c) = cached.as_ref() {
            let age = c.fetched.elapsed();
            if age < if refresh { JWKS_REFETCH_GAP } else { CACHE_TTL } {
                return Ok(Arc::clone(&c.value));
            }
        }
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Value>,
        }
        let set: Set = self.get_json(&meta.jwks_uri).await?;
        let keys = Arc::new(Keys(set.keys.into_iter().filter_map(|k| serde_json::from_value(k).ok()).collect()));
        *cached = Some(Cached { value: Arc::clone(&keys), fetched: Instant::now() });
        Ok(keys)
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let down = |e: String| OidcError::Unavailable(format!("{url}: {e}"));
        let resp =
            self.http.get(url).header("accept", "application/json").send().await.map_err(|e| down(e.to_string()))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| down(e.to_string()))?;
        if !status.is_success() {
            return Err(down(format!("HTTP {status}")));
        }
        if body.len() > MAX_BODY {
            return Err(down("answer too large".into()));
        }
        serde_json::from_slice(&body).map_err(|e| down(format!("not the expected JSON: {e}")))
    }

    /// Exchanges the code (with the PKCE verifier) for the ID token, authenticating with
    /// the client secret as the provider announces (`client_secret_basic` unless only
    /// `client_secret_post` is offered).
    pub(super) async fn exchange(&self, meta: &Metadata, code: &str, verifier: &str) -> Result<String, OidcError> {
        let methods = &meta.token_endpoint_auth_methods_supported;
        let basic = methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic");
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("code_verifier", verifier);
            if !basic {
                form.append_pair("client_id", &self.cfg.client_id)
                    .append_pair("client_secret", &self.cfg.client_secret);
            }
            form.finish()
        };
        let mut req = self
            .http
            .post(&meta.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        if basic {
            // RFC 6749 2.3.1: both parts form-encoded before Basic.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(&self.cfg.client_id), Some(enc(&self.cfg.client_secret)));
        }
        let down = |e: String| OidcError::Unavailable(format!("{}: {e}", meta.token_endpoint));
        let resp = req.body(body).send().await.map_err(|e| down(e.to_string()))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| down(e.to_string()))?;
        if status.is_server_error() || body.len() > MAX_BODY {
            return Err(down(format!("HTTP {status}")));
        }
        let json: Map<String, Value> = serde_json::from_slice(&body).unwrap_or_default();
        let text = |k: &str| json.get(k).and_then(Value::as_str);
        if !status.is_success() {
            let detail = text("error_description").map(|d| format!(": {d}")).unwrap_or_default();
            let error = text("error").unwrap_or("no error code");
            return Err(refused(format!("The provider refused the code ({error}{detail}). Start again.")));
        }
        text("id_token").map(str::to_owned).ok_or_else(|| down("the token answer has no id_token".into()))
    }

    /// Verifies the ID token: an allowed algorithm, the signature by a key of the JWKS,
    /// `iss`, `aud` (and `azp` when there are several audiences), `exp` (a minute's
    /// leeway), `nonce`.
    pub(super) async fn verify(
        &self,
        meta: &Metadata,
        token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let invalid = |e: String| refused(format!("The provider's ID token is not valid here: {e}."));
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.to_string()))?;
        let alg = header.alg;
        let announced = &meta.id_token_signing_alg_values_supported;
        let alg_name = format!("{alg:?}");
        if !ALGORITHMS.contains(&alg) || !(announced.is_empty() || announced.contains(&alg_name)) {
            return Err(invalid(format!("it is signed with {alg_name}, which is not allowed")));
        }
        let kid = header.kid.as_deref();
        let key = match pick(&*self.keys(meta, false).await?, kid, alg) {
            Some(k) => k,
            // An unknown key: the provider may have rotated its keys.
            None => pick(&*self.keys(meta, true).await?, kid, alg)
                .ok_or_else(|| invalid("its key is not among the provider's published keys".into()))?,
        };
        let mut v = Validation::new(alg);
        v.set_issuer(&[&meta.issuer]);
        v.set_audience(&[&self.cfg.client_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| invalid(e.to_string()))?.claims;
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(invalid("its nonce is not this sign-in's".into()));
        }
        let several_audiences = claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1);
        if several_audiences && claims.get("azp").and_then(Value::as_str) != Some(self.cfg.client_id.as_str()) {
            return Err(invalid("it was issued to another client (azp)".into()));
        }
        Ok(claims)
    }
}

/// The key of the JWKS that verifies `alg` with this `kid` (any key of the right kind
/// without one), never an encryption key.
pub(super) fn pick(keys: &Keys, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let family = |k: &Jwk| {
        matches!(
            (&k.algorithm, alg),
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256 | Algorithm::ES384)
                | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        )
    };
    keys.0
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid)))
        .filter(|k| k.common.public_key_use != Some(PublicKeyUse::Encryption))
        .filter(|k| family(k))
        .find_map(|k| DecodingKey::from_jwk(k).ok())
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    #[test]
    fn keys_are_picked_by_kid_kind_and_use() {
        let n = URL_SAFE_NO_PAD.encode([0xc3u8; 256]);
        let xy = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let keys: Vec<Jwk> = serde_json::from_value(serde_json::json!([
            {"kty": "RSA", "kid": "sig", "use": "sig", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": xy, "y": xy},
        ]))
        .unwrap();
        let keys = Keys(keys);
        assert!(pick(&keys, Some("sig"), Algorithm::RS256).is_some());
        assert!(pick(&keys, Some("sig"), Algorithm::PS384).is_some());
        assert!(pick(&keys, Some("enc"), Algorithm::RS256).is_none(), "never an encryption key");
        assert!(pick(&keys, Some("sig"), Algorithm::ES256).is_none(), "an RSA key does not verify ES256");
        assert!(pick(&keys, Some("gone"), Algorithm::RS256).is_none());
        assert!(pick(&keys, None, Algorithm::ES256).is_some(), "without a kid, a key of the right kind");
        assert!(pick(&keys, None, Algorithm::EdDSA).is_none());
    }
}
