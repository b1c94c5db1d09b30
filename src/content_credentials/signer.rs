//! The C2PA signer and reader (the `content-credentials` feature).

use std::io::Cursor;

use c2pa::{create_signer, BoxedSigner, Builder, Context, Reader, SigningAlg};
use serde_json::{json, Value};

use super::{Claim, CredentialsError, DigitalSourceType};
use crate::job::Format;

/// Why a version could not be signed.
pub type SignError = c2pa::Error;

/// The software agent and claim generator every manifest names.
fn agent() -> Value {
    json!({"name": "imgworker", "version": env!("CARGO_PKG_VERSION")})
}

/// A worker's C2PA signer, checked at start-up: it has signed a test
/// manifest that verifies against its certificate.
pub struct ContentCredentials {
    signer: BoxedSigner,
}

impl std::fmt::Debug for ContentCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentCredentials")
            .field("alg", &self.signer.alg())
            .finish_non_exhaustive()
    }
}

/// The algorithms tried, in order, on a key: its type decides which one
/// can load it (PS256 for RSA keys).
const ALGORITHMS: &[SigningAlg] = &[
    SigningAlg::Es256,
    SigningAlg::Es384,
    SigningAlg::Es512,
    SigningAlg::Ed25519,
    SigningAlg::Ps256,
];

impl ContentCredentials {
    /// A signer from a PEM certificate chain (the signing certificate
    /// first) and its PKCS#8 PEM private key. It signs a small test image
    /// and reads the signature back, so that a key that does not match
    /// the certificate, or a certificate C2PA refuses, is an error here
    /// rather than on the first job.
    pub fn new(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, CredentialsError> {
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        if !cert_chain_pem.windows(BEGIN.len()).any(|w| w == BEGIN) {
            return Err(CredentialsError::NoCertificate);
        }
        let signer = ALGORITHMS
            .iter()
            .find_map(|&alg| create_signer::from_keys(cert_chain_pem, key_pem, alg, None).ok())
            .ok_or(CredentialsError::Key)?;
        let me = Self { signer };
        let probe = probe_png();
        let created = json!({
            "action": "c2pa.created",
            "digitalSourceType": DigitalSourceType::DigitalCreation.iri(),
            "softwareAgent": agent(),
        });
        let signed = builder("probe.png")
            .and_then(|mut b| {
                b.add_action(created)?;
                me.embed(b, "image/png", &probe)
            })
            .map_err(CredentialsError::Certificate)?;
        match verify(&signed, "image/png") {
            Ok(Verified { valid: true, .. }) => Ok(me),
            Ok(Verified { codes, .. }) => Err(CredentialsError::Mismatch(codes.join(", "))),
            Err(e) => Err(CredentialsError::Mismatch(e.to_string())),
        }
    }

    /// `asset` (a version encoded as `format`) with a signed manifest
    /// embedded, describing `claim`.
    pub fn sign(
        &self,
        claim: &Claim<'_>,
        format: Format,
        asset: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let ingredient = json!({
            "title": claim.parent_title,
            "relationship": "parentOf",
            "label": "parent",
        })
        .to_string();
        let mut b = builder(claim.title)?;
        let read = match claim.parent_format {
            Some(f) => b
                .add_ingredient_from_stream(&ingredient, f, &mut Cursor::new(claim.parent))
                .map(|_| ()),
            None => Err(c2pa::Error::UnsupportedType),
        };
        if read.is_err() {
            // A parent c2pa cannot read (a format it does not handle)
            // carries no manifest to keep: it is only named.
            b = builder(claim.title)?;
            b.add_ingredient(c2pa::Ingredient::from_json(&ingredient)?);
        }
        for action in claim.actions(format) {
            b.add_action(action)?;
        }
        self.embed(b, format.mime(), asset)
    }

    /// Sign `b`'s manifest into a copy of `asset`.
    fn embed(&self, mut b: Builder, mime: &str, asset: &[u8]) -> c2pa::Result<Vec<u8>> {
        let mut out = Cursor::new(Vec::with_capacity(asset.len() + 32 * 1024));
        b.sign(
            self.signer.as_ref(),
            mime,
            &mut Cursor::new(asset),
            &mut out,
        )?;
        Ok(out.into_inner())
    }
}

/// A manifest builder for a version named `title`, naming imgworker as
/// its claim generator.
fn builder(title: &str) -> c2pa::Result<Builder> {
    Builder::from_context(Context::new()).with_definition(json!({
        "title": title,
        "claim_generator_info": [agent()],
    }))
}

impl Claim<'_> {
    /// The `c2pa.actions.v2` list: opened, one per op, converted.
    fn actions(&self, format: Format) -> Vec<Value> {
        let action = |name: &str, params: Value| {
            let mut a = json!({"action": name, "softwareAgent": agent(), "parameters": params});
            if let Some(t) = self.digital_source_type {
                a["digitalSourceType"] = t.iri().into();
            }
            a
        };
        let mut actions = vec![action("c2pa.opened", json!({"ingredientIds": ["parent"]}))];
        for (op, c2pa_action) in &self.ops {
            actions.push(action(c2pa_action, json!({"op": op})));
        }
        if self.parent_format != Some(format.ext()) {
            actions.push(action("c2pa.converted", json!({"format": format.mime()})));
        }
        actions
    }
}

/// A manifest store read back and validated, without trust anchors.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Whether the signature, the hashes and the assertions are valid
    /// (trust in the certificate's issuer aside).
    pub valid: bool,
    /// The failure codes, when not valid.
    pub codes: Vec<String>,
}

/// Read the manifest embedded in `bytes` (`format` an extension or MIME
/// type) and validate it.
pub fn verify(bytes: &[u8], format: &str) -> c2pa::Result<Verified> {
    use c2pa::validation_results::ValidationState;
    let reader = Reader::from_context(Context::new()).with_stream(format, Cursor::new(bytes))?;
    let valid = reader.validation_state() != ValidationState::Invalid;
    let codes = reader
        .validation_status()
        .unwrap_or_default()
        .iter()
        .map(|s| s.code().to_string())
        .filter(|c| c != "signingCredential.untrusted")
        .collect();
    Ok(Verified { valid, codes })
}

/// A 1x1 PNG: the image of the start-up test signature.
fn probe_png() -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&[0, 0, 0, 255], 1, 1, image::ExtendedColorType::Rgba8)
        .expect("encoding 1 pixel");
    out
}
