//! HTTP jobs (spec §9): one request per item to `http.uri` with `http.method`, the body
//! `http.data` for POST, PUT and DELETE, and the item's sharding context JSON in the
//! `shardingContext` header.
//!
//! One deliberate difference from Java: ElasticJob only logs a warning for a status of 400
//! or more and counts the item as successful. Capstan counts it as a failure, with the
//! status and the start of the body in the run record, because an operator looking at a
//! green run that got a 500 has been misled.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use super::{BoxFuture, Execute, ItemEnv, ItemOutcome, millis_prop, truncate};

pub(crate) const URI: &str = "http.uri";
const METHOD: &str = "http.method";
const DATA: &str = "http.data";
const CONNECT_TIMEOUT: &str = "http.connect.timeout.milliseconds";
const READ_TIMEOUT: &str = "http.read.timeout.milliseconds";
const CONTENT_TYPE: &str = "http.content.type";
/// Bytes of the response body kept in a run record.
const BODY_LIMIT: usize = 4 * 1024;

/// An HTTP job's settings, from its props.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// `http.uri`.
    pub uri: String,
    /// `http.method`, upper-cased.
    pub method: String,
    /// `http.data`, sent for POST, PUT and DELETE.
    pub data: Option<String>,
    /// `http.connect.timeout.milliseconds` (default 3000).
    pub connect_timeout: Duration,
    /// `http.read.timeout.milliseconds` (default 5000).
    pub read_timeout: Duration,
    /// `http.content.type`.
    pub content_type: Option<String>,
}

impl HttpSettings {
    /// Reads the props.
    ///
    /// # Errors
    /// `(prop, problem)` for the first unusable prop.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<HttpSettings, (String, String)> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let uri = get(URI).ok_or_else(|| (URI.to_owned(), "an HTTP job needs a URI".to_owned()))?;
        match reqwest::Url::parse(uri) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => {
                return Err((
                    URI.into(),
                    format!("{uri:?}: use an http:// or https:// address"),
                ));
            }
            Err(e) => return Err((URI.into(), format!("{uri:?} is not a URI: {e}"))),
        }
        let method = get(METHOD)
            .ok_or_else(|| {
                (
                    METHOD.to_owned(),
                    "an HTTP job needs a method (GET, POST, PUT, DELETE, …)".to_owned(),
                )
            })?
            .to_ascii_uppercase();
        if reqwest::Method::from_bytes(method.as_bytes()).is_err() {
            return Err((METHOD.into(), format!("{method:?} is not an HTTP method")));
        }
        Ok(HttpSettings {
            uri: uri.to_owned(),
            method,
            data: props.get(DATA).cloned(),
            connect_timeout: millis_prop(props, CONNECT_TIMEOUT, 3000)?,
            read_timeout: millis_prop(props, READ_TIMEOUT, 5000)?,
            content_type: get(CONTENT_TYPE).map(str::to_owned),
        })
    }
}

pub(crate) struct Http;

/// rustls needs one process-wide crypto provider; ring is the one compiled in.
fn install_crypto() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // Fails only if another provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Execute for Http {
    fn run(&self, env: ItemEnv) -> BoxFuture<ItemOutcome> {
        Box::pin(run(env))
    }
}

async fn run(env: ItemEnv) -> ItemOutcome {
    let s = match HttpSettings::from_props(&env.config.props) {
        Ok(s) => s,
        Err((prop, why)) => return ItemOutcome::failed(format!("{prop}: {why}")),
    };
    install_crypto();
    // A client per run: timeouts come from the config, which may change between runs.
    let client = match reqwest::Client::builder()
        .connect_timeout(s.connect_timeout)
        .read_timeout(s.read_timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => return ItemOutcome::failed(format!("cannot build an HTTP client: {e}")),
    };
    let method = reqwest::Method::from_bytes(s.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let with_body = matches!(s.method.as_str(), "POST" | "PUT" | "DELETE");
    let mut request = client
        .request(method, &s.uri)
        .header("shardingContext", env.context.to_json());
    if let Some(ct) = &s.content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, ct);
    }
    if with_body && let Some(data) = &s.data {
        request = request.body(data.clone());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return ItemOutcome::failed(format!(
                "{} {} failed: {}",
                s.method,
                s.uri,
                super::error_chain(&e)
            ));
        }
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let output = Some(format!("HTTP {status}\n{}", truncate(&body, BODY_LIMIT)));
    let failure =
        (status.as_u16() >= 400).then(|| format!("{} {} answered {status}", s.method, s.uri));
    ItemOutcome { failure, output }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    use crate::kinds::test_env as env;

    /// A one-request HTTP server on 127.0.0.1 answering `status`; returns what it read.
    async fn serve_once(status: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 8192];
            let mut read = 0;
            // Headers, then the body if a Content-Length says there is one.
            loop {
                let n = socket.read(&mut buf[read..]).await.expect("read");
                read += n;
                let text = String::from_utf8_lossy(&buf[..read]).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if read >= end + 4 + len || n == 0 {
                        break;
                    }
                }
            }
            let reply =
                format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            socket.write_all(reply.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&buf[..read]).into_owned()
        });
        (format!("http://{addr}/hook"), task)
    }

    #[tokio::test]
    async fn requests_carry_the_context_and_statuses_decide() {
        let (uri, server) = serve_once("200 OK").await;
        let ok = Http
            .run(env(&[
                (URI, &uri),
                (METHOD, "post"),
                (DATA, "{\"x\":1}"),
                (CONTENT_TYPE, "application/json"),
            ]))
            .await;
        assert_eq!(ok.failure, None, "{ok:?}");
        let request = server.await.expect("server");
        assert!(request.starts_with("POST /hook"), "{request}");
        assert!(
            request.contains(r#"shardingcontext: {"jobName":"j""#),
            "{request}"
        );
        assert!(request.ends_with("{\"x\":1}"), "{request}");

        let (uri, server) = serve_once("503 Service Unavailable").await;
        let failed = Http.run(env(&[(URI, &uri), (METHOD, "GET")])).await;
        assert_eq!(
            failed.failure,
            Some(format!("GET {uri} answered 503 Service Unavailable"))
        );
        server.await.expect("server");

        // Nothing listens on port 9 of 127.0.0.1.
        let refused = Http
            .run(env(&[(URI, "http://127.0.0.1:9/"), (METHOD, "GET")]))
            .await;
        assert!(refused.failure.expect("fails").contains("failed"));
    }

    #[test]
    fn props_are_validated() {
        let props = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            HttpSettings::from_props(&props(&[(URI, "ftp://x/"), (METHOD, "GET")]))
                .expect_err("scheme")
                .0,
            URI
        );
        assert_eq!(
            HttpSettings::from_props(&props(&[(URI, "http://x/")]))
                .expect_err("method")
                .0,
            METHOD
        );
        assert_eq!(
            HttpSettings::from_props(&props(&[
                (URI, "http://x/"),
                (METHOD, "GET"),
                (READ_TIMEOUT, "soon")
            ]))
            .expect_err("timeout")
            .0,
            READ_TIMEOUT
        );
        let ok = HttpSettings::from_props(&props(&[(URI, "https://x/"), (METHOD, "get")]))
            .expect("valid");
        assert_eq!(ok.method, "GET");
        assert_eq!(ok.read_timeout, Duration::from_millis(5000));
    }
}
