//! Who a request comes from and which address it used: from the connection itself, or, with
//! `--trust-proxy`, from the headers the proxy in front adds. Off by default: anyone can send them.

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderName};
use actix_web::HttpRequest;
use url::Url;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// How requests reach the server: whether a proxy's headers are believed, and the public address.
#[derive(Debug, Clone)]
pub struct Proxying {
    pub trust_proxy: bool,
    pub public_url: Option<Url>,
}

/// The client behind a request, as far as the server may believe.
#[derive(Debug)]
pub struct Client {
    pub address: Option<IpAddr>,
    /// The host (and port) the client asked for, which the Origin check compares with.
    pub host: Option<String>,
    pub scheme: String,
}

impl Proxying {
    pub fn client(&self, request: &HttpRequest) -> Client {
        let header = |name: &HeaderName| request.headers().get(name).and_then(|v| v.to_str().ok());
        let own_scheme = if request.app_config().secure() {
            "https"
        } else {
            "http"
        };
        let peer = request.peer_addr().map(|peer| peer.ip());
        if !self.trust_proxy {
            return Client {
                address: peer,
                host: header(&header::HOST).map(str::to_owned),
                scheme: own_scheme.to_owned(),
            };
        }
        // The last address is the one our proxy appended: earlier ones came from the client.
        let forwarded = header(&X_FORWARDED_FOR)
            .and_then(|list| list.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok());
        Client {
            address: forwarded.or(peer),
            host: header(&X_FORWARDED_HOST)
                .or(header(&header::HOST))
                .map(str::to_owned),
            scheme: header(&X_FORWARDED_PROTO).unwrap_or(own_scheme).to_owned(),
        }
    }

    /// The address invite links start with: `--public-url`, or the one the visitor used.
    pub fn base_url(&self, request: &HttpRequest) -> String {
        if let Some(public) = &self.public_url {
            return public.as_str().trim_end_matches('/').to_owned();
        }
        let client = self.client(request);
        format!(
            "{}://{}",
            client.scheme,
            client.host.unwrap_or_else(|| "localhost".to_owned())
        )
    }
}
