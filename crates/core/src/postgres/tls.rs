//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert`, over rustls with the ring provider
//! (no system libssl and no C toolchain beyond a compiler, so the prebuilt binaries cross-compile
//! and need nothing installed).
//!
//! tokio-postgres itself knows only disable/prefer/require and no root certificates, so
//! [`from_url`] takes `sslmode` and `sslrootcert` out of the URL's query before tokio-postgres
//! parses the rest; tokio-postgres then only decides whether to ask the server for TLS (and
//! whether a refusal is fatal), and the checks each mode asks for live in [`Verifier`].
//!
//! | sslmode      | TLS                         | certificate checked                          |
//! |--------------|-----------------------------|----------------------------------------------|
//! | disable      | never                       | —                                            |
//! | prefer       | if the server offers it     | no (the chain, if sslrootcert is a file)     |
//! | require      | always                      | no (the chain, if sslrootcert is a file)     |
//! | verify-ca    | always                      | the chain leads to a trusted root            |
//! | verify-full  | always                      | the chain, and the host name                 |
//!
//! Trusted roots: the PEM file `sslrootcert`, or the system's root certificates when it is
//! absent or `system` (libpq reads `~/.postgresql/root.crt` instead; a prebuilt binary serving
//! managed databases is better served by the system's store).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;

use crate::error::{Error, Result};

/// libpq's sslmode values this store speaks (`allow` is refused: it tries plain text first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

const MODES: &str = "disable, prefer, require, verify-ca or verify-full";

impl Mode {
    fn parse(value: &str) -> Result<Mode> {
        Ok(match value {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            "allow" => {
                return Err(Error::invalid(
                    "sslmode=allow is not supported (it tries a plain connection first): pass \
                     sslmode=prefer to use TLS when the server offers it, or sslmode=disable",
                ))
            }
            other => {
                return Err(Error::invalid(format!(
                    "sslmode {other:?} is not known: pass {MODES}"
                )))
            }
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres negotiates: whether to ask for TLS, and whether a server without
    /// TLS is an error.
    pub(crate) fn negotiation(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// Query parameters of libpq's TLS family that this store does not support; named so the
/// error says so instead of tokio-postgres's "unknown option".
const UNSUPPORTED: [&str; 5] = ["sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir"];

/// Takes `sslmode` and `sslrootcert` out of `url`'s query (the last of each wins, as in
/// tokio-postgres); returns the URL without them, for tokio-postgres, and the connector they ask
/// for. The query starts at the first `?` after the user info, where tokio-postgres looks.
pub(crate) fn from_url(url: &str) -> Result<(String, MakeRustls)> {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let after_userinfo = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |i| after_scheme + i + 1);
    let Some(q) = url[after_userinfo..].find('?').map(|i| after_userinfo + i) else {
        return Ok((url.to_string(), MakeRustls::new(None, None)?));
    };
    let (mut mode, mut rootcert) = (None, None);
    let mut kept = Vec::new();
    for pair in url[q + 1..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match decode(key)?.as_str() {
            "sslmode" => mode = Some(Mode::parse(&decode(value)?)?),
            "sslrootcert" => rootcert = Some(decode(value)?),
            k if UNSUPPORTED.contains(&k) => {
                return Err(Error::invalid(format!(
                    "{k} is not supported: taskito does not send client certificates nor read \
                     revocation lists; authenticate with a password (or leave {k} out)"
                )))
            }
            _ => kept.push(pair),
        }
    }
    let mut rest = url[..q].to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, MakeRustls::new(mode, rootcert.as_deref())?))
}

fn decode(s: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::invalid(format!("url parameter {s:?} is not UTF-8 once decoded")))
}

/// The `MakeTlsConnect` tokio-postgres and the pool take: the mode and the rustls
/// configuration it asks for, shared by every connection of a store.
#[derive(Clone, Debug)]
pub(crate) struct MakeRustls {
    mode: Mode,
    config: Arc<ClientConfig>,
    /// Where the trusted roots come from, for messages; None when the chain is not checked.
    roots: Option<Arc<str>>,
}

impl MakeRustls {
    /// `mode` None is libpq's default: prefer, or verify-full with `sslrootcert=system`.
    fn new(mode: Option<Mode>, rootcert: Option<&str>) -> Result<MakeRustls> {
        let mode = match (mode, rootcert) {
            (None, Some("system")) => Mode::VerifyFull,
            (Some(m), Some("system")) if m != Mode::VerifyFull => {
                return Err(Error::invalid(format!(
                    "sslrootcert=system trusts every public CA, so it needs sslmode=verify-full \
                     (got sslmode={}): pass sslmode=verify-full, or sslrootcert=/path/to/ca.pem",
                    m.name()
                )))
            }
            (m, _) => m.unwrap_or(Mode::Prefer),
        };
        // As libpq: a root certificate file makes prefer and require check the chain too.
        let roots = match (mode, rootcert) {
            (Mode::Disable, _) => None,
            (Mode::Prefer | Mode::Require, None) => None,
            (_, None | Some("system")) => Some(system_roots()?),
            (_, Some(path)) => Some(file_roots(path)?),
        };
        let label = roots.as_ref().map(|_| match rootcert {
            Some(path) if path != "system" => Arc::from(format!("sslrootcert={path}")),
            _ => Arc::from("the system's root certificates"),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(Verifier {
            roots,
            check_name: mode == Mode::VerifyFull,
            algs: provider.signature_verification_algorithms,
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Queue(format!("cannot set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // PostgreSQL 17 needs it for direct TLS (sslnegotiation=direct) and refuses any other
        // protocol name; libpq 17 always sends it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(MakeRustls {
            mode,
            config: Arc::new(config),
            roots: label,
        })
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// A failed handshake as a sentence naming the mode and the fix.
    fn explain(&self, host: &str, e: &io::Error) -> HandshakeError {
        let mode = match self.mode {
            Mode::Prefer | Mode::Require if self.roots.is_some() => {
                format!(
                    "{} with sslrootcert, which checks the chain",
                    self.mode.name()
                )
            }
            m => m.name().to_string(),
        };
        let roots = self.roots.as_deref().unwrap_or("the trusted roots");
        let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
        let why = match tls {
            Some(rustls::Error::InvalidCertificate(c)) => match c {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                    "the server's certificate is not signed by a CA in {roots}: pass the CA \
                     certificate that signed it as sslrootcert=/path/to/ca.pem"
                ),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => format!(
                    "the server's certificate does not name the host {host:?}: connect with a \
                     host name the certificate lists, or pass sslmode=verify-ca to check the CA \
                     only"
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "the server's certificate has expired: renew it on the server".to_string()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "the server's certificate is not valid yet: check the clocks of this machine \
                     and of the server"
                        .to_string()
                }
                _ => format!(
                    "the server's certificate is refused: check it against {roots}, or pass \
                     sslmode=require to encrypt without checking it"
                ),
            },
            _ => "check that the server speaks TLS 1.2 or 1.3 on this port, or pass \
                  sslmode=disable if it has no TLS"
                .to_string(),
        };
        HandshakeError(format!(
            "the TLS handshake with {host} failed under sslmode={mode} ({e}): {why}"
        ))
    }
}

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = TlsStream;
    type TlsConnect = RustlsConnect;
    type Error = HandshakeError;

    fn make_tls_connect(&mut self, host: &str) -> std::result::Result<RustlsConnect, Self::Error> {
        // tokio-postgres asks for a connector before it knows whether TLS will be used (also
        // for Unix sockets, with an empty host): a host that is no server name fails only when
        // a handshake really needs it.
        Ok(RustlsConnect {
            make: self.clone(),
            name: ServerName::try_from(host.to_string()).ok(),
            host: host.to_string(),
        })
    }
}

pub(crate) struct RustlsConnect {
    make: MakeRustls,
    name: Option<ServerName<'static>>,
    host: String,
}

type Handshake =
    Pin<Box<dyn Future<Output = std::result::Result<TlsStream, HandshakeError>> + Send>>;

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = TlsStream;
    type Error = HandshakeError;
    type Future = Handshake;

    fn connect(self, stream: Socket) -> Handshake {
        Box::pin(async move {
            let Some(name) = self.name else {
                return Err(HandshakeError(format!(
                    "TLS needs a server name, and {:?} is none (sslmode={}): connect by host \
                     name or IP address",
                    self.host,
                    self.make.mode.name()
                )));
            };
            tokio_rustls::TlsConnector::from(self.make.config.clone())
                .connect(name, stream)
                .await
                .map(TlsStream)
                .map_err(|e| self.make.explain(&self.host, &e))
        })
    }
}

/// Why a handshake failed, as a whole sentence: the store reports it as DB_UNAVAILABLE.
#[derive(Debug)]
pub(crate) struct HandshakeError(String);

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandshakeError {}

/// A TLS connection to the server.
pub(crate) struct TlsStream(tokio_rustls::client::TlsStream<Socket>);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tokio_postgres::tls::TlsStream for TlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM then authenticates without channel binding (tokio-postgres's default
        // channel_binding=prefer allows it).
        ChannelBinding::none()
    }
}

/// The certificate checks of the mode. Without roots the certificate is taken as it comes, as
/// libpq does for prefer and require; the handshake signatures are checked in every mode.
#[derive(Debug)]
struct Verifier {
    roots: Option<RootCertStore>,
    check_name: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algs.all,
            )?;
            if self.check_name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

fn file_roots(path: &str) -> Result<RootCertStore> {
    let fix = "pass the path of a PEM file holding the CA certificates that sign the server's \
               certificate (your provider documents where to download it)";
    let pem = std::fs::read(path)
        .map_err(|e| Error::invalid(format!("sslrootcert {path:?} cannot be read ({e}): {fix}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid(format!("sslrootcert {path:?} is not PEM ({e}): {fix}")))?;
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(Error::invalid(format!(
            "sslrootcert {path:?} holds no usable certificate (-----BEGIN CERTIFICATE----- \
             blocks): {fix}"
        )));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::invalid(format!(
            "no system root certificates were found{}: pass sslrootcert=/path/to/ca.pem, or \
             install the system's CA certificates (e.g. the ca-certificates package)",
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        )));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, Mode, bool) {
        let (rest, tls) = from_url(url).unwrap();
        (rest, tls.mode(), tls.roots.is_some())
    }

    #[test]
    fn tls_parameters_are_taken_out_of_the_query() {
        let (rest, mode, checked) = split("postgres://u:p@h:5/db");
        assert_eq!(
            (rest.as_str(), mode, checked),
            ("postgres://u:p@h:5/db", Mode::Prefer, false)
        );
        let (rest, mode, _) = split("postgres://u@h/db?sslmode=require&application_name=x");
        assert_eq!(
            (rest.as_str(), mode),
            ("postgres://u@h/db?application_name=x", Mode::Require)
        );
        let (rest, mode, checked) = split("postgres://u@h/db?sslmode=disable");
        assert_eq!(
            (rest.as_str(), mode, checked),
            ("postgres://u@h/db", Mode::Disable, false)
        );
        // The last one wins, and values are percent-decoded.
        let (_, mode, _) = split("postgres://u@h/db?sslmode=require&sslmode=prefer");
        assert_eq!(mode, Mode::Prefer);
        let (_, mode, checked) = split("postgres://u@h/db?ssl%6Dode=verify%2Dfull");
        assert_eq!((mode, checked), (Mode::VerifyFull, true));
        // A '?' in the password is not the query.
        let (rest, mode, _) = split("postgres://u:p?w@h/db?sslmode=verify-ca");
        assert_eq!(
            (rest.as_str(), mode),
            ("postgres://u:p?w@h/db", Mode::VerifyCa)
        );
        // sslrootcert=system means verify-full unless a mode is given, and only verify-full.
        let (_, mode, checked) = split("postgres://u@h/db?sslrootcert=system");
        assert_eq!((mode, checked), (Mode::VerifyFull, true));
        let e = from_url("postgres://u@h/db?sslrootcert=system&sslmode=require")
            .err()
            .unwrap();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert!(e.message().contains("verify-full"), "{e}");
    }

    #[test]
    fn bad_tls_parameters_are_invalid_arguments() {
        for (url, words) in [
            (
                "postgres://u@h/db?sslmode=verify_full",
                "disable, prefer, require",
            ),
            ("postgres://u@h/db?sslmode=allow", "prefer"),
            (
                "postgres://u@h/db?sslmode=verify-ca&sslrootcert=/no/such/ca.pem",
                "/no/such/ca.pem",
            ),
            ("postgres://u@h/db?sslcert=/c.pem", "client certificates"),
        ] {
            let e = from_url(url).err().unwrap();
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{url}");
            assert!(e.message().contains(words), "{url}: {e}");
        }
        // A file that is not a certificate.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = from_url(&format!(
            "postgres://u@h/db?sslmode=verify-ca&sslrootcert={}",
            path.display()
        ))
        .err()
        .unwrap();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert!(e.message().contains("no usable certificate"), "{e}");
    }
}
