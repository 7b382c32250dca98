//! Content digests (`<algorithm>:<hex>`) and the streaming hashers behind them.
//!
//! A [`Digest`] is validated once where it enters (`FromStr`) and carried as a newtype
//! everywhere after. A [`Hasher`] can be serialized between requests so that a resumed
//! upload continues hashing where the last chunk stopped, without re-reading data.

use std::{fmt, str::FromStr};

use sha2::digest::{Digest as _, common::hazmat::SerializableState};

/// A supported digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn tag(self) -> u8 {
        match self {
            Algorithm::Sha256 => 1,
            Algorithm::Sha512 => 2,
        }
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, DigestError> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            _ => Err(DigestError::UnsupportedAlgorithm),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("malformed digest")]
    Malformed,
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    #[error("bad hash state")]
    BadState,
}

/// A validated digest: a supported algorithm and lower-case hex of the right length.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        // Validated at construction, so the prefix is always one we know.
        if self.0.starts_with("sha512:") { Algorithm::Sha512 } else { Algorithm::Sha256 }
    }

    /// The hex part after the colon.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map(|(_, h)| h).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digest of a whole buffer (manifests, small bodies).
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.finish()
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, DigestError> {
        let (alg, hex) = s.split_once(':').ok_or(DigestError::Malformed)?;
        // The OCI grammar allows other algorithms; we refuse them as unsupported
        // but only after checking the general shape.
        let alg_ok = !alg.is_empty()
            && alg.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
        if !alg_ok || hex.is_empty() {
            return Err(DigestError::Malformed);
        }
        let alg: Algorithm = alg.parse()?;
        if hex.len() != alg.hex_len() || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(DigestError::Malformed);
        }
        Ok(Digest(s.to_owned()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Format version of a serialized [`Hasher`] state; bump when the layout changes.
const STATE_VERSION: u8 = 1;

/// An incremental hasher for one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let (alg, bytes) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Hasher::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest(format!("{}:{}", alg.as_str(), hex::encode(bytes)))
    }

    /// Serializes the state: `[algorithm tag, format version, sha2 state...]`.
    pub fn to_state(&self) -> Vec<u8> {
        let mut out = vec![self.algorithm().tag(), STATE_VERSION];
        match self {
            Hasher::Sha256(h) => out.extend_from_slice(h.serialize().as_slice()),
            Hasher::Sha512(h) => out.extend_from_slice(h.serialize().as_slice()),
        }
        out
    }

    pub fn from_state(state: &[u8]) -> Result<Hasher, DigestError> {
        let [tag, version, rest @ ..] = state else {
            return Err(DigestError::BadState);
        };
        if *version != STATE_VERSION {
            return Err(DigestError::BadState);
        }
        match *tag {
            1 => {
                let s = rest.try_into().map_err(|_| DigestError::BadState)?;
                sha2::Sha256::deserialize(s).map(Hasher::Sha256).map_err(|_| DigestError::BadState)
            }
            2 => {
                let s = rest.try_into().map_err(|_| DigestError::BadState)?;
                sha2::Sha512::deserialize(s).map(Hasher::Sha512).map_err(|_| DigestError::BadState)
            }
            _ => Err(DigestError::BadState),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let ok = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(ok.parse::<Digest>().unwrap().as_str(), ok);
        for bad in [
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:abc",
            "sha256:",
            ":abc",
            "nocolon",
            "sha256:zz0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert_eq!(bad.parse::<Digest>(), Err(DigestError::Malformed), "{bad}");
        }
        assert_eq!("md5:abcd".parse::<Digest>(), Err(DigestError::UnsupportedAlgorithm));
    }

    #[test]
    fn empty_digests() {
        assert_eq!(
            Digest::of(Algorithm::Sha256, b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(Digest::of(Algorithm::Sha512, b"").as_str().starts_with("sha512:cf83e1357eefb8bd"));
    }

    #[test]
    fn state_round_trip_continues_hash() {
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut a = Hasher::new(alg);
            a.update(b"hello ");
            let state = a.to_state();
            let mut b = Hasher::from_state(&state).unwrap();
            b.update(b"world");
            assert_eq!(b.finish(), Digest::of(alg, b"hello world"));
        }
        assert!(Hasher::from_state(&[1, 99, 0]).is_err());
        assert!(Hasher::from_state(&[]).is_err());
    }
}
