//! The HTTP side of a scrape config: `basic_auth`, `authorization`, `tls_config` and
//! `follow_redirects`.
//!
//! [`ClientOptions`] is what a scrape config says about its client; every target of the job
//! carries the same options, so the manager builds one reqwest client per distinct options
//! ([`build`]) and shares it among them. Credentials are not baked into the client:
//! [`authorize`] adds the `Authorization` header to each request, reading `password_file` or
//! `credentials_file` at that moment, as Prometheus does, so a rotated token is used without a
//! reload. Errors name files and settings but never contain a secret.
//!
//! A `proxy_url` applies to every request of the job, plain or TLS (tunnelled with CONNECT).
//! TLS goes through reqwest's own settings, except with `server_name`: reqwest verifies the
//! certificate against the URL's host only, so then [`build`] hands it a rustls configuration
//! of its own whose verifier ([`ServerNameOverride`]) checks the certificate against the
//! configured name instead. The SNI sent is still the URL's host.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::config::{Authorization, BasicAuth, ProxyUrl, ScrapeConfig, Secret, TlsConfig, TlsVersion};

/// The client settings of one scrape config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientOptions {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls: TlsConfig,
    /// Redirects are followed (at most 10) unless this is set.
    pub no_redirects: bool,
    /// Bodies are asked for gzip-compressed unless this is set.
    pub no_compression: bool,
    pub proxy: Option<ProxyUrl>,
}

/// The `authorization` of a client config, or the Bearer one its older spelling
/// `bearer_token(_file)` stands for.
pub fn authorization_or_bearer(
    authorization: &Option<Authorization>,
    bearer_token: &Option<Secret>,
    bearer_token_file: &Option<PathBuf>,
) -> Option<Authorization> {
    authorization.clone().or_else(|| {
        (bearer_token.is_some() || bearer_token_file.is_some()).then(|| Authorization {
            kind: "Bearer".to_string(),
            credentials: bearer_token.clone(),
            credentials_file: bearer_token_file.clone(),
        })
    })
}

impl ClientOptions {
    pub fn of(sc: &ScrapeConfig) -> ClientOptions {
        ClientOptions {
            basic_auth: sc.basic_auth.clone(),
            authorization: authorization_or_bearer(
                &sc.authorization,
                &sc.bearer_token,
                &sc.bearer_token_file,
            ),
            tls: sc.tls_config.clone().unwrap_or_default(),
            no_redirects: !sc.follow_redirects,
            no_compression: !sc.enable_compression,
            proxy: sc.proxy_url.clone(),
        }
    }
}

#[derive(Clone, Copy)]
enum Pem {
    Ca,
    Cert,
    Key,
}

/// PEM text of a TLS setting and how errors name it (never by its content: a key is secret).
struct PemText {
    text: Vec<u8>,
    name: String,
}

/// The PEM text of `which`, given inline (`ca`) or as a file (`ca_file`), read now.
fn pem(tls: &TlsConfig, which: Pem) -> Result<Option<PemText>, String> {
    let (what, inline, file) = match which {
        Pem::Ca => ("ca", tls.ca.as_deref(), &tls.ca_file),
        Pem::Cert => ("cert", tls.cert.as_deref(), &tls.cert_file),
        Pem::Key => ("key", tls.key.as_ref().map(|k| k.0.as_str()), &tls.key_file),
    };
    match (inline, file) {
        (Some(text), _) => {
            Ok(Some(PemText { text: text.as_bytes().to_vec(), name: format!("tls_config {what}") }))
        }
        (None, Some(path)) => Ok(Some(PemText {
            text: read(&format!("tls_config {what}_file"), path)?,
            name: format!("tls_config {what}_file {}", path.display()),
        })),
        (None, None) => Ok(None),
    }
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// A client for `opts`: its TLS roots, client certificate and redirect policy.
pub fn build(opts: &ClientOptions) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("Vigil/", env!("CARGO_PKG_VERSION")))
        .gzip(!opts.no_compression);
    if let Some(p) = &opts.proxy {
        let proxy =
            reqwest::Proxy::all(p.0.as_str()).map_err(|e| format!("proxy_url {}: {e}", p.redacted()))?;
        b = b.proxy(proxy);
    }
    if opts.no_redirects {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    let tls = &opts.tls;
    if let (Some(name), false) = (&tls.server_name, tls.insecure_skip_verify) {
        b = b.tls_backend_preconfigured(rustls_with_server_name(tls, name)?);
        return b.build().map_err(|e| format!("cannot build the HTTP client: {}", innermost(&e)));
    }
    if let Some(ca) = pem(tls, Pem::Ca)? {
        let certs =
            reqwest::Certificate::from_pem_bundle(&ca.text).map_err(|e| format!("{}: {e}", ca.name))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", ca.name));
        }
        // Like Prometheus: a configured CA replaces the system's roots.
        b = b.tls_certs_only(certs);
    }
    if let (Some(cert), Some(key)) = (pem(tls, Pem::Cert)?, pem(tls, Pem::Key)?) {
        let mut text = cert.text;
        text.push(b'\n');
        text.extend(key.text);
        let identity =
            reqwest::Identity::from_pem(&text).map_err(|e| format!("{} / {}: {e}", cert.name, key.name))?;
        b = b.identity(identity);
    }
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    let version = |v: TlsVersion| match v {
        TlsVersion::Tls10 => reqwest::tls::Version::TLS_1_0,
        TlsVersion::Tls11 => reqwest::tls::Version::TLS_1_1,
        TlsVersion::Tls12 => reqwest::tls::Version::TLS_1_2,
        TlsVersion::Tls13 => reqwest::tls::Version::TLS_1_3,
    };
    if let Some(v) = tls.min_version {
        b = b.tls_version_min(version(v));
    }
    if let Some(v) = tls.max_version {
        b = b.tls_version_max(version(v));
    }
    b.build().map_err(|e| format!("cannot build the HTTP client: {}", innermost(&e)))
}

/// A rustls configuration like reqwest's (CA file or system roots, optional client
/// certificate) whose verifier checks certificates against `name`.
fn rustls_with_server_name(tls: &TlsConfig, name: &str) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|_| format!("tls_config server_name {name:?} is not a DNS name or IP address"))?;
    let inner: Arc<dyn ServerCertVerifier> = match pem(tls, Pem::Ca)? {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&ca.text) {
                let cert = cert.map_err(|e| format!("{}: {e}", ca.name))?;
                roots.add(cert).map_err(|e| format!("{}: {e}", ca.name))?;
            }
            if roots.is_empty() {
                return Err(format!("{} holds no PEM certificate", ca.name));
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("{}: {e}", ca.name))?
        }
        None => Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| format!("cannot load the system's certificate roots: {e}"))?,
        ),
    };
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(TlsVersion::Tls12, &rustls::version::TLS12), (TlsVersion::Tls13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| {
                tls.min_version.is_none_or(|min| *v >= min) && tls.max_version.is_none_or(|max| *v <= max)
            })
            .map(|(_, p)| p)
            .collect();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("cannot configure TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerNameOverride { inner, name: server_name }));
    let mut config = match (pem(tls, Pem::Cert)?, pem(tls, Pem::Key)?) {
        (Some(cert), Some(key)) => {
            let pair = || format!("{} / {}", cert.name, key.name);
            let certs = CertificateDer::pem_slice_iter(&cert.text)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", pair()))?;
            let key = PrivateKeyDer::from_pem_slice(&key.text).map_err(|e| format!("{}: {e}", pair()))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| format!("{}: {e}", pair()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies certificates with `inner`, but against the configured `server_name` rather than the
/// host the connection was made to.
#[derive(Debug)]
struct ServerNameOverride {
    inner: Arc<dyn ServerCertVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ServerNameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}

/// A secret read from a file, without the surrounding whitespace an editor leaves.
async fn read_secret(what: &str, path: &Path) -> Result<String, String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    Ok(text.trim().to_string())
}

/// Adds the configured `Authorization` header to `req`.
pub async fn authorize(
    req: reqwest::RequestBuilder,
    opts: &ClientOptions,
) -> Result<reqwest::RequestBuilder, String> {
    if let Some(b) = &opts.basic_auth {
        let password = match (&b.password, &b.password_file) {
            (_, Some(file)) => read_secret("basic_auth password_file", file).await?,
            (Some(p), None) => p.0.clone(),
            (None, None) => String::new(),
        };
        return Ok(req.basic_auth(&b.username, Some(password)));
    }
    if let Some(a) = &opts.authorization {
        let credentials = match (&a.credentials, &a.credentials_file) {
            (_, Some(file)) => read_secret("authorization credentials_file", file).await?,
            (Some(c), None) => c.0.clone(),
            (None, None) => String::new(),
        };
        let mut value = reqwest::header::HeaderValue::from_str(&format!("{} {credentials}", a.kind))
            .map_err(|_| "authorization credentials are not a valid header value".to_string())?;
        value.set_sensitive(true);
        return Ok(req.header(reqwest::header::AUTHORIZATION, value));
    }
    Ok(req)
}
