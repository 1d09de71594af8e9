//! The dashboard stack for tests: the real OpenID Connect provider (npm
//! oidc-provider), the dashboard running as the chart's service account with
//! terminal shortcuts configured, a second dashboard with the development
//! login behind a trusted proxy (this host), and a browser-like HTTP client
//! that logs in through the provider's own forms.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use kube::Api;
use portico::{
    api::SessionClaim,
    controlplane::{Process, free_port},
};
use reqwest::redirect::Policy;

use super::shared_with_operator;

pub struct Stack {
    _provider: Process,
    _ui: Process,
    pub base: String,
    /// The provider's issuer URL.
    pub issuer: String,
    /// The port kept for the Dex-shaped dashboard (`dex_stack`).
    dex_port: u16,
}

pub fn oidc_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc"))
}

/// Tests that log in as alice take turns, so each can count her sessions.
pub static ALICE_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the provider and the dashboard once for this test binary.
pub async fn stack() -> &'static Stack {
    static STACK: tokio::sync::OnceCell<Stack> = tokio::sync::OnceCell::const_new();
    STACK
        .get_or_init(|| async {
            let cp = shared_with_operator();
            super::operator::ensure_namespace(cp, portico::dev::demo::SESSIONS_NAMESPACE).await;
            if !oidc_dir().join("node_modules/oidc-provider").exists() {
                let out = std::process::Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(oidc_dir()).output().unwrap();
                assert!(out.status.success(), "npm ci: {}", String::from_utf8_lossy(&out.stderr));
            }
            let (op_port, ui_port, dex_port) = (free_port().unwrap(), free_port().unwrap(), free_port().unwrap());
            let base = format!("http://127.0.0.1:{ui_port}");
            let dir = cp.dir();
            let log = dir.join("oidc.log");
            let provider = Process::spawn(
                "oidc-provider",
                "node".as_ref(),
                &[
                    oidc_dir().join("server.mjs").to_string_lossy().into_owned(),
                    op_port.to_string(),
                    "portico".into(),
                    "test-secret".into(),
                    format!("{base}/auth/callback,http://127.0.0.1:{dex_port}/auth/callback"),
                ],
                &log,
            )
            .unwrap();
            wait_http(&format!("http://127.0.0.1:{op_port}/.well-known/openid-configuration")).await;
            use base64::Engine;
            std::fs::write(dir.join("cookie.key"), base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 64]>())).unwrap();
            std::fs::write(dir.join("client.secret"), "test-secret").unwrap();
            let config = format!(
                "listen: 127.0.0.1:{ui_port}\npublicUrl: {base}\noidc:\n  issuer: http://127.0.0.1:{op_port}\n  clientId: portico\n  clientSecretFile: {}\n  usernameClaim: preferred_username\n  usernamePrefix: '-'\ncookieKeyFile: {}\nsession: {{profile: developer, namespace: {}}}\nassetsDir: {}\nbranding: {{accentColor: '#0f766e'}}\nterminals:\n  shortcutNamespaces: [team-a, team-b]\n  shortcuts: {}\n",
                dir.join("client.secret").display(),
                dir.join("cookie.key").display(),
                portico::dev::demo::SESSIONS_NAMESPACE,
                ui_assets().display(),
                serde_json::to_string(&test_shortcuts()).unwrap(),
            );
            let ui = dashboard("ui", &config).await;
            wait_http(&format!("{base}/healthz")).await;
            Stack {
                _provider: provider,
                _ui: ui,
                base,
                issuer: format!("http://127.0.0.1:{op_port}"),
                dex_port,
            }
        })
        .await
}

/// A second dashboard on the same provider, configured as for Dex: users
/// named by their verified e-mail (no prefix, as kube-apiserver leaves
/// e-mails), refresh tokens asked for with `offline_access` and every
/// session refreshed each second.
pub async fn dex_stack() -> &'static DevStack {
    static STACK: tokio::sync::OnceCell<DevStack> = tokio::sync::OnceCell::const_new();
    STACK
        .get_or_init(|| async {
            let s = stack().await;
            let dir = shared_with_operator().dir();
            let base = format!("http://127.0.0.1:{}", s.dex_port);
            let config = format!(
                "listen: 127.0.0.1:{}\npublicUrl: {base}\noidc:\n  issuer: {}\n  clientId: portico\n  clientSecretFile: {}\n  scopes: [email, profile, groups, offline_access]\n  refreshSeconds: 1\ncookieKeyFile: {}\nsession: {{profile: developer, namespace: {}}}\nassetsDir: {}\n",
                s.dex_port,
                s.issuer,
                dir.join("client.secret").display(),
                dir.join("cookie.key").display(),
                portico::dev::demo::SESSIONS_NAMESPACE,
                ui_assets().display(),
            );
            let ui = dashboard("ui-dex", &config).await;
            wait_http(&format!("{base}/healthz")).await;
            DevStack { _ui: ui, base }
        })
        .await
}

/// The login provider the API server trusts (HTTPS, its certificate from
/// the test's own CA), and a dashboard on it that offers kubectl as the user
/// and acts with users' own ID tokens instead of impersonating them (each
/// session refreshed every 2 s, so it acts with ever newer ones).
pub struct KubectlStack {
    _provider: Process,
    _ui: Process,
    pub base: String,
}

/// The lifetime of the trusted provider's ID tokens (seconds): short, so a
/// test sees sessions outlive them.
pub const ID_TOKEN_TTL: i64 = 30;

/// Starts the trusted provider and its dashboard once for this test binary.
pub async fn kubectl_stack() -> &'static KubectlStack {
    static STACK: tokio::sync::OnceCell<KubectlStack> = tokio::sync::OnceCell::const_new();
    STACK
        .get_or_init(|| async {
            let cp = shared_with_operator();
            let _ = stack().await; // the session namespace, the client secret, the cookie key
            let issuer = super::trusted_issuer();
            let dir = cp.dir();
            std::fs::write(dir.join("login.crt"), &issuer.cert.cert_pem).unwrap();
            std::fs::write(dir.join("login.key"), &issuer.cert.key_pem).unwrap();
            std::fs::write(dir.join("login-ca.crt"), &issuer.ca_pem).unwrap();
            let port = free_port().unwrap();
            let base = format!("http://127.0.0.1:{port}");
            let provider = Process::spawn_with_env(
                "oidc-provider-trusted",
                "node".as_ref(),
                &[
                    oidc_dir().join("server.mjs").to_string_lossy().into_owned(),
                    issuer.port.to_string(),
                    "portico".into(),
                    "test-secret".into(),
                    format!("{base}/auth/callback"),
                ],
                &[
                    ("TLS_CERT", dir.join("login.crt").as_os_str()),
                    ("TLS_KEY", dir.join("login.key").as_os_str()),
                    ("ID_TOKEN_TTL", std::ffi::OsStr::new(&ID_TOKEN_TTL.to_string())),
                ],
                &dir.join("oidc-trusted.log"),
            )
            .unwrap();
            wait_log_line(&dir.join("oidc-trusted.log"), &format!("ready {}", issuer.url)).await;
            wait_issuer_trusted(cp, &issuer.url).await;
            let config = format!(
                "listen: 127.0.0.1:{port}\npublicUrl: {base}\noidc:\n  issuer: {}\n  clientId: portico\n  clientSecretFile: {}\n  caFile: {}\n  usernameClaim: preferred_username\n  usernamePrefix: '-'\n  refreshSeconds: 2\ncookieKeyFile: {}\nsession: {{profile: developer, namespace: {}}}\nassetsDir: {}\napiServer:\n  server: {}\n  caFile: {}\n  audiences: [portico, {}]\n  kubectlClientId: {}\n  kubectlScopes: [profile, groups]\n  dashboardActsWith: token\n",
                issuer.url,
                dir.join("client.secret").display(),
                dir.join("login-ca.crt").display(),
                dir.join("cookie.key").display(),
                portico::dev::demo::SESSIONS_NAMESPACE,
                ui_assets().display(),
                cp.server(),
                dir.join("ca.crt").display(),
                super::KUBECTL_CLIENT,
                super::KUBECTL_CLIENT,
            );
            let ui = dashboard("ui-kubectl", &config).await;
            wait_http(&format!("{base}/healthz")).await;
            KubectlStack {
                _provider: provider,
                _ui: ui,
                base,
            }
        })
        .await
}

/// Waits (bounded) until the API server has read the issuer's discovery
/// document, which it retries every 10 s after failing while the provider
/// was not up: until then it refuses the issuer's tokens as "authenticator
/// not initialized". Once it has, checking a token of the issuer's (here one
/// it never signed, in a TokenReview) fetches the issuer's keys, which its
/// metrics then show.
async fn wait_issuer_trusted(cp: &portico::controlplane::ControlPlane, issuer: &str) {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use k8s_openapi::api::authentication::v1::TokenReview;
    let admin = cp.admin_client().await.unwrap();
    let fetched = "apiserver_authentication_jwt_authenticator_jwks_fetch_last_timestamp_seconds{";
    for _ in 0..240 {
        let claims = serde_json::json!({"iss": issuer, "aud": super::KUBECTL_CLIENT, "sub": "probe",
            "exp": k8s_openapi::jiff::Timestamp::now().as_second() + 600});
        let probe = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"probe"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let review: TokenReview = serde_json::from_value(serde_json::json!({"spec": {"token": probe}})).unwrap();
        let _ = Api::<TokenReview>::all(admin.clone())
            .create(&Default::default(), &review)
            .await;
        let metrics = admin
            .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
            .await
            .unwrap_or_default();
        if metrics
            .lines()
            .any(|l| l.starts_with(fetched) && l.contains(r#"result="success""#))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the API server never fetched the keys of {issuer}");
}

/// Waits (bounded) until the file `log` holds `line`.
async fn wait_log_line(log: &std::path::Path, line: &str) {
    for _ in 0..300 {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(line)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} never said {line:?}: {}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Starts `portico ui` with `config` (written to `<name>.yaml`), as the
/// chart's service account for it: the chart's own RBAC, not admin.
pub async fn dashboard(name: &str, config: &str) -> Process {
    let cp = shared_with_operator();
    let dir = cp.dir();
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, config).unwrap();
    let kubeconfig = super::operator::chart_identity(cp, "templates/dashboard-rbac.yaml", "portico-dashboard").await;
    Process::spawn_with_env(
        &format!("portico-{name}"),
        env!("CARGO_BIN_EXE_portico").as_ref(),
        &["ui".into(), "--config".into(), file.to_string_lossy().into_owned()],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
        &dir.join(format!("{name}.log")),
    )
    .unwrap()
}

/// A dashboard with the development login (alice, carol), whose trusted
/// proxy is this host: tests name their client with `X-Forwarded-For`.
pub struct DevStack {
    _ui: Process,
    pub base: String,
}

/// Starts the development-login dashboard once for this test binary.
pub async fn dev_stack() -> &'static DevStack {
    static STACK: tokio::sync::OnceCell<DevStack> = tokio::sync::OnceCell::const_new();
    STACK
        .get_or_init(|| async {
            let cp = shared_with_operator();
            super::operator::ensure_namespace(cp, portico::dev::demo::SESSIONS_NAMESPACE).await;
            let port = free_port().unwrap();
            let base = format!("http://127.0.0.1:{port}");
            let config = format!(
                "listen: 127.0.0.1:{port}\npublicUrl: {base}\ndevUsers: [{{name: alice, groups: [developers]}}, {{name: carol, groups: [portico-admins]}}]\nsession: {{profile: developer, namespace: {}}}\nassetsDir: {}\ntrustedProxies: [127.0.0.1/32]\n",
                portico::dev::demo::SESSIONS_NAMESPACE,
                ui_assets().display(),
            );
            let ui = dashboard("ui-dev", &config).await;
            wait_http(&format!("{base}/healthz")).await;
            DevStack { _ui: ui, base }
        })
        .await
}

/// Waits (bounded) until `url` answers 200.
pub async fn wait_http(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

/// A browser-like client: follows redirects by hand and keeps cookies by name.
pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            // Idle connections are dropped well before the dashboard's
            // keep-alive (5 s) closes them: a request is never sent on a
            // connection the server is closing (hyper's IncompleteMessage).
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn keep(&mut self, r: &reqwest::Response) {
        for c in r.headers().get_all("set-cookie") {
            let text = c.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.to_ascii_lowercase().contains("max-age=0") || v.is_empty() {
                self.cookies.remove(k.trim());
            } else {
                self.cookies.insert(k.trim().to_string(), v.to_string());
            }
        }
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let r = req.header("cookie", self.cookie_header()).send().await.unwrap();
        self.keep(&r);
        r
    }

    /// GETs `url`, following redirects; returns the final response.
    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut url = url.to_string();
        for _ in 0..20 {
            let r = self.send(self.http.get(&url)).await;
            if !r.status().is_redirection() {
                return r;
            }
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            url = absolute(&url, &loc);
        }
        panic!("too many redirects");
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let r = self.send(self.http.post(url).form(form)).await;
        if r.status().is_redirection() {
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            return self.get(&absolute(url, &loc)).await;
        }
        r
    }

    /// Logs in on the development login page as a browser does: the page's
    /// CSRF token (and pre-session cookie) with the dashboard's own Origin.
    pub async fn dev_login(&mut self, base: &str, user: &str) -> reqwest::Response {
        let page = self.get(&format!("{base}/login")).await.text().await.unwrap();
        let token = csrf(&page);
        let url = format!("{base}/dev-login");
        let r = self
            .send(
                self.http
                    .post(&url)
                    .header("origin", base)
                    .form(&[("user", user), ("csrf", token.as_str())]),
            )
            .await;
        if r.status().is_redirection() {
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            return self.get(&absolute(&url, &loc)).await;
        }
        r
    }

    /// Logs out with the CSRF token of the catalog page, and says yes when
    /// the provider asks whether to end its login too; returns the last
    /// response (the dashboard's "Logged out" page).
    pub async fn logout(&mut self, base: &str) -> reqwest::Response {
        let page = self.get(&format!("{base}/")).await.text().await.unwrap();
        let r = self
            .post_form(&format!("{base}/logout"), &[("csrf", &csrf(&page))])
            .await;
        self.confirm_provider_logout(base, r).await
    }

    /// When `r` is the provider's question whether to end its login, answers
    /// yes and follows it back to the dashboard.
    pub async fn confirm_provider_logout(&mut self, base: &str, r: reqwest::Response) -> reqwest::Response {
        if r.url().as_str().starts_with(base) {
            return r;
        }
        let url = r.url().to_string();
        let html = r.text().await.unwrap();
        let action = absolute(&url, &form_action(&html).expect("the provider's logout form"));
        let i = html.find("name=\"xsrf\" value=\"").expect("the logout form's xsrf") + 19;
        let xsrf = html[i..i + html[i..].find('"').unwrap()].to_string();
        self.post_form(&action, &[("xsrf", xsrf.as_str()), ("logout", "yes")])
            .await
    }

    /// Logs in as `user` through the provider's own login and consent forms.
    pub async fn login(&mut self, base: &str, user: &str) -> String {
        let mut page = self.get(&format!("{base}/login")).await;
        for _ in 0..5 {
            let url = page.url().to_string();
            let html = page.text().await.unwrap();
            let Some(action) = form_action(&html).filter(|a| a.contains("/interaction/")) else {
                return html;
            };
            let action = absolute(&url, &action);
            page = if html.contains("name=\"login\"") {
                self.post_form(&action, &[("prompt", "login"), ("login", user), ("password", "any")])
                    .await
            } else {
                self.post_form(&action, &[("prompt", "consent")]).await
            };
        }
        panic!("login did not finish");
    }
}

pub fn absolute(current: &str, location: &str) -> String {
    if location.starts_with("http") {
        return location.to_string();
    }
    let origin: Vec<&str> = current.splitn(4, '/').take(3).collect();
    format!("{}{location}", origin.join("/"))
}

pub fn form_action(html: &str) -> Option<String> {
    let i = html.find("<form")?;
    let rest = &html[i..];
    let a = rest.find("action=\"")? + 8;
    Some(rest[a..a + rest[a..].find('"')?].replace("&amp;", "&"))
}

pub fn csrf(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[i..i + html[i..].find('"').unwrap()].to_string()
}

pub async fn claims_of(user: &str) -> Vec<SessionClaim> {
    let api: Api<SessionClaim> = Api::namespaced(
        shared_with_operator().admin_client().await.unwrap(),
        portico::dev::demo::SESSIONS_NAMESPACE,
    );
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| {
            portico::creator::Creator::from_annotations(c.metadata.annotations.as_ref()).is_ok_and(|cr| cr.user == user)
        })
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .collect()
}

/// The dashboard's npm packages (xterm.js), installed with `npm ci` if missing.
pub fn ui_assets() -> PathBuf {
    npm_ci(
        &PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/ui")),
        "node_modules/@xterm/xterm",
    )
    .join("node_modules")
}

/// Runs `npm ci` in `dir` unless `marker` (relative to it) exists; returns `dir`.
pub fn npm_ci(dir: &std::path::Path, marker: &str) -> PathBuf {
    if !dir.join(marker).exists() {
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npm ci in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir.to_path_buf()
}

/// Where browser tests keep their screenshots.
pub fn screenshots() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/test-artifacts/screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts a Playwright script from tests/browser (Debian's chromium) with `args`.
pub fn browser_script(script: &str, args: &[&str]) -> tokio::process::Child {
    let dir = npm_ci(
        &PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser")),
        "node_modules/playwright-core",
    );
    tokio::process::Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits for a browser script and fails the test with its output unless it printed `ok` and exited 0.
pub async fn expect_browser_ok(child: tokio::process::Child) {
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "browser flow failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo's terminal shortcuts with the node's local toolbox image (a
/// shell and kubectl) instead of public images, which cannot be pulled here.
pub fn test_shortcuts() -> serde_json::Value {
    portico::dev::demo::shortcuts(Some(portico::controlplane::node::images::TOOLBOX_IMAGE))
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens Terminal `key`'s WebSocket with the browser's cookies and `origin`.
pub async fn open_socket(
    b: &Browser,
    base: &str,
    key: &str,
    origin: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let url = format!("{}/terminals/{key}/attach", base.replace("http://", "ws://"));
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    req.headers_mut().insert("cookie", b.cookie_header().parse().unwrap());
    req.headers_mut().insert("origin", origin.parse().unwrap());
    Ok(tokio_tungstenite::connect_async(req).await?.0)
}

/// Attaches through the dashboard's WebSocket, waits for `{"status":"attached"}`,
/// types `input` and returns the terminal's output once it contains `expect`.
pub async fn shell(b: &Browser, base: &str, key: &str, input: &str, expect: &str) -> String {
    use futures::SinkExt;
    let mut ws = open_socket(b, base, key, base).await.expect("websocket");
    let mut out = String::new();
    let mut texts = vec![];
    let talk = async {
        while let Some(Ok(m)) = futures::StreamExt::next(&mut ws).await {
            match m {
                tokio_tungstenite::tungstenite::Message::Text(t) => {
                    let attached = t.contains("\"attached\"");
                    texts.push(t.to_string());
                    if attached {
                        ws.send(tokio_tungstenite::tungstenite::Message::Binary(
                            input.as_bytes().to_vec().into(),
                        ))
                        .await
                        .unwrap();
                    }
                }
                tokio_tungstenite::tungstenite::Message::Binary(bytes) => {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    if out.contains(expect) {
                        return;
                    }
                }
                tokio_tungstenite::tungstenite::Message::Close(_) => break,
                _ => {}
            }
        }
    };
    let done = tokio::time::timeout(Duration::from_secs(60), talk).await;
    assert!(
        done.is_ok() && out.contains(expect),
        "no {expect:?} from the shell; said {texts:?}, output {out:?}"
    );
    let _ = ws.close(None).await;
    out
}

/// Creates a Terminal from a shortcut through the dashboard; returns `namespace/name`.
pub async fn open(b: &mut Browser, base: &str, form: &[(&str, &str)]) -> String {
    let r = b.send(b.http.post(format!("{base}/terminals")).form(form)).await;
    assert_eq!(
        r.status(),
        reqwest::StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    loc.trim_start_matches("/terminals/").to_string()
}
