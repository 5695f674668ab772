//! The Origin check that stops other websites from opening WebSockets in a visitor's name.
//!
//! Host and port are compared, not scheme: behind a TLS tunnel such as ngrok the browser says
//! `https://x.ngrok.app` while the server itself speaks plain http to the tunnel.

use url::Url;

/// A host and, unless it is a default one, a port: `chat.example.com`, `localhost:8080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    /// From an Origin header such as `https://chat.example.com`; `null` and other opaque origins give `None`.
    fn from_origin(origin: &str) -> Option<Self> {
        let url = Url::parse(origin).ok()?;
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return None;
        }
        Some(Self {
            host: url.host_str()?.to_owned(),
            // 80 and 443 both count as "no port": the two sides may disagree on the scheme.
            port: url.port().filter(|port| !matches!(port, 80 | 443)),
        })
    }

    /// From a Host header such as `localhost:8080` or `[::1]:8080`.
    fn from_host(host: &str) -> Option<Self> {
        Self::from_origin(&format!("http://{host}"))
    }

    /// Parses an `--allowed-origins` entry: an origin (`https://chat.example.com`) or a bare host[:port].
    pub fn parse_allowed(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let parsed = if entry.contains("://") {
            Self::from_origin(entry)
        } else {
            Self::from_host(entry)
        };
        parsed.ok_or_else(|| {
            format!("{entry:?} is not an origin like https://chat.example.com or a host like chat.example.com:8443")
        })
    }
}

/// Which pages may open WebSockets: the server's own host, plus the configured allow-list.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Vec<Authority>);

impl AllowedOrigins {
    pub fn new(extra: Vec<Authority>) -> Self {
        Self(extra)
    }

    /// `origin` and `host` are the request's headers, if it sent them and they are text.
    pub fn permits(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        // Scripts and bots send no Origin; cross-site hijacking needs a browser, and browsers always send one.
        let Some(origin) = origin else {
            return true;
        };
        let Some(origin) = Authority::from_origin(origin) else {
            return false;
        };
        host.and_then(Authority::from_host).as_ref() == Some(&origin) || self.0.contains(&origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> AllowedOrigins {
        AllowedOrigins::new(
            entries
                .iter()
                .map(|e| Authority::parse_allowed(e).unwrap())
                .collect(),
        )
    }

    #[test]
    fn no_origin_is_allowed() {
        assert!(allow(&[]).permits(None, Some("localhost:8080")));
    }

    #[test]
    fn the_servers_own_host_and_port_are_allowed() {
        assert!(allow(&[]).permits(Some("http://localhost:8080"), Some("localhost:8080")));
        assert!(allow(&[]).permits(Some("http://[::1]:8080"), Some("[::1]:8080")));
    }

    #[test]
    fn a_tls_tunnel_in_front_is_allowed() {
        assert!(allow(&[]).permits(Some("https://abc.ngrok.app"), Some("abc.ngrok.app")));
    }

    #[test]
    fn another_site_is_refused() {
        assert!(!allow(&[]).permits(Some("https://evil.example"), Some("localhost:8080")));
    }

    #[test]
    fn the_same_host_on_another_port_is_refused() {
        assert!(!allow(&[]).permits(Some("http://localhost:9999"), Some("localhost:8080")));
    }

    #[test]
    fn a_null_or_garbled_origin_is_refused() {
        for origin in ["null", "", "not a url", "http://localhost:8080/path"] {
            assert!(
                !allow(&[]).permits(Some(origin), Some("localhost:8080")),
                "{origin:?}"
            );
        }
    }

    #[test]
    fn allow_list_entries_match_as_origins_or_hosts() {
        let origins = allow(&["https://chat.example.com", "app.example.org:8443"]);
        assert!(origins.permits(Some("https://chat.example.com"), Some("internal:8080")));
        assert!(origins.permits(Some("http://CHAT.example.com"), Some("internal:8080")));
        assert!(origins.permits(Some("https://app.example.org:8443"), Some("internal:8080")));
        assert!(!origins.permits(Some("https://app.example.org"), Some("internal:8080")));
    }

    #[test]
    fn a_malformed_allow_list_entry_is_an_error() {
        assert!(Authority::parse_allowed("https://").is_err());
        assert!(Authority::parse_allowed("a b").is_err());
    }
}
