//! A build without the `content-credentials` feature: no signer can be
//! made, so no version is signed, and a configured certificate is refused
//! at start-up rather than ignored.

use std::convert::Infallible;

use super::{Claim, CredentialsError};
use crate::job::Format;

/// Why a version could not be signed: never, in this build.
pub type SignError = Infallible;

/// A signer this build cannot make.
#[derive(Debug)]
pub struct ContentCredentials {
    never: Infallible,
}

impl ContentCredentials {
    /// Always [`CredentialsError::NotBuilt`].
    pub fn new(_cert_chain_pem: &[u8], _key_pem: &[u8]) -> Result<Self, CredentialsError> {
        Err(CredentialsError::NotBuilt)
    }

    /// Unreachable: no value of this type exists.
    pub fn sign(
        &self,
        _claim: &Claim<'_>,
        _format: Format,
        _asset: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        match self.never {}
    }
}
