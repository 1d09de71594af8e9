//! The dashboard configuration file (YAML), checked at start with errors that
//! name the key.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use crate::config::ConfigError;

/// Everything `portico ui` reads from `--config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UiConfig {
    /// Address the HTTP server listens on (TLS ends at the ingress in front of it).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The URL users reach the dashboard at, for the OIDC redirect (`…/auth/callback`).
    pub public_url: String,
    /// The OpenID Connect provider. Exactly one of `oidc` and `devUsers`.
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
    /// Development only (`portico dev`): a login page listing these users, no
    /// password. Never set this on a shared cluster.
    #[serde(default)]
    pub dev_users: Option<Vec<DevUser>>,
    /// A file holding the 64-byte key (base64) that encrypts and authenticates
    /// cookies; required with `oidc`. Without it a random key is made at start.
    #[serde(default)]
    pub cookie_key_file: Option<PathBuf>,
    /// The SessionClaim every login makes.
    pub session: SessionConfig,
    /// Namespaces holding the template catalog.
    #[serde(default = "default_catalog")]
    pub catalog_namespaces: Vec<String>,
    /// The proxies in front of the dashboard (CIDRs or addresses, e.g. the
    /// Ingress controller's pod network): behind them a request's client is
    /// read from `X-Forwarded-For`, right to left, skipping these hops. Empty:
    /// the TCP peer is the client and `X-Forwarded-For` is ignored. Login
    /// attempts are limited per client.
    #[serde(default)]
    pub trusted_proxies: super::client_ip::TrustedProxies,
    /// Groups whose members see everyone's objects.
    #[serde(default = "default_admins")]
    pub admin_groups: Vec<String>,
    /// Product name shown in the header.
    #[serde(default = "default_product")]
    pub product_name: String,
    /// Logo, colours.
    #[serde(default)]
    pub branding: Branding,
    /// Terminal shortcuts and where labelled shortcut ConfigMaps are looked for.
    #[serde(default)]
    pub terminals: TerminalsConfig,
    /// The directory holding the npm packages of the terminal page
    /// (`@xterm/xterm`, `@xterm/addon-fit`): `ui/node_modules` after
    /// `npm ci --prefix ui`; the container image has them at the default.
    #[serde(default = "default_assets_dir")]
    pub assets_dir: PathBuf,
    /// HTTP worker threads. Absent: one per CPU the process may use (as
    /// its CPU affinity and cgroup CPU quota allow).
    #[serde(default)]
    pub workers: Option<std::num::NonZeroUsize>,
    /// Where the API server trusts `oidc.issuer` too: users get kubectl
    /// access as themselves, and the dashboard may act with their own ID
    /// tokens instead of impersonating them.
    #[serde(default)]
    pub api_server: Option<ApiServerLogin>,
    /// Other clusters users may open terminals in, besides this one. The
    /// operator reaches each through a kubeconfig Secret in the Terminal's
    /// namespace; the dashboard through its own kubeconfig, impersonating
    /// users there as here.
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
    /// A Prometheus that scrapes the operator: Insights shows delivery
    /// figures over time from it. Absent: the page says what to configure.
    #[serde(default)]
    pub prometheus: Option<PrometheusConfig>,
}

/// Where Insights reads the operator's metrics.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Prometheus' base URL (its HTTP API is under `/api/v1`), for example
    /// `http://prometheus-operated.monitoring:9090`.
    pub url: String,
    /// Labels every series Insights reads must carry: those of the
    /// operator's scrape target (for the chart's ServiceMonitor,
    /// `namespace: <release namespace>`), so series another target
    /// publishes under the same names are not counted.
    #[serde(default)]
    pub source: std::collections::BTreeMap<String, String>,
}

/// Another cluster the dashboard knows.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfig {
    /// A DNS label naming the cluster in forms.
    pub name: String,
    /// Shown in forms and on terminal pages.
    pub title: String,
    /// The Secret holding the operator's kubeconfig for the cluster, in each
    /// namespace whose Terminals may use it: what a Terminal's
    /// `spec.host.cluster.kubeconfigSecretRef.name` names. A user is offered
    /// the cluster in the namespaces where they may read it.
    pub secret_name: String,
    /// The Secret's key holding the kubeconfig.
    #[serde(default = "default_secret_key")]
    pub secret_key: String,
    /// The dashboard's own kubeconfig for the cluster. That identity needs
    /// to impersonate users and groups there, as the dashboard's does here.
    pub kubeconfig_file: PathBuf,
}

fn default_secret_key() -> String {
    "kubeconfig".into()
}

/// `clusters`: names and Secrets each name one cluster (pure); the index
/// and key at fault, and what is wrong.
fn check_clusters(clusters: &[ClusterConfig]) -> Result<(), (String, String)> {
    for (i, c) in clusters.iter().enumerate() {
        let at = |key: &str| format!("clusters[{i}].{key}");
        if !is_dns_label(&c.name) {
            return Err((
                at("name"),
                format!("{:?} is not a DNS label (a-z, 0-9, -; at most 63)", c.name),
            ));
        }
        if !(c.secret_name.len() <= 253 && c.secret_name.split('.').all(is_dns_label)) {
            return Err((at("secretName"), format!("{:?} is not a Secret name", c.secret_name)));
        }
        if c.title.trim().is_empty() {
            return Err((at("title"), "say what users see the cluster called".into()));
        }
        if let Some(j) = clusters[..i].iter().position(|o| o.name == c.name) {
            return Err((at("name"), format!("{:?} names clusters[{j}] too", c.name)));
        }
        if let Some(j) = clusters[..i].iter().position(|o| o.secret_name == c.secret_name) {
            return Err((
                at("secretName"),
                format!(
                    "Secret {:?} is clusters[{j}]'s: a Secret's name must name one cluster",
                    c.secret_name
                ),
            ));
        }
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    super::shortcuts::dns_label(s, 63)
}

/// The API server's trust in the login provider, as it is configured there
/// (`--oidc-*` flags, or a JWT issuer of its `--authentication-config`).
/// The user and group names it makes must be those `oidc.usernamePrefix`,
/// `oidc.groupsPrefix` and the claims make here.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServerLogin {
    /// The API server's URL as users reach it (https).
    pub server: String,
    /// A PEM file with the CA of the API server's serving certificate;
    /// absent: the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The audiences the API server accepts in ID tokens (its
    /// `--oidc-client-id`, or its configuration's `audiences`).
    pub audiences: Vec<String>,
    /// The public client (no secret, PKCE) of the kubeconfig offered on the
    /// account page, which logs in through kubectl's `oidc-login` plugin
    /// (kubelogin); one of `audiences`. Absent: no such kubeconfig.
    #[serde(default)]
    pub kubectl_client_id: Option<String>,
    /// Scopes the plugin asks for besides `openid`; absent: `oidc.scopes`.
    #[serde(default)]
    pub kubectl_scopes: Option<Vec<String>>,
    /// How the dashboard acts as a user: `impersonation` (the default), or
    /// `token`, with the ID token of the user's login (which needs
    /// `oidc.clientId` among `audiences`, and lasts only as long as that
    /// token: set `oidc.refreshSeconds` below the provider's ID-token
    /// lifetime).
    #[serde(default)]
    pub dashboard_acts_with: ActsWith,
}

/// How the dashboard acts as a user towards the API server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActsWith {
    /// Its own identity, impersonating the user and their groups.
    #[default]
    Impersonation,
    /// The ID token of the user's login.
    Token,
}

impl ApiServerLogin {
    /// Whether the API server accepts the dashboard's own ID tokens, so a
    /// user may use theirs with `kubectl --token`.
    pub fn accepts_client(&self, client_id: &str) -> bool {
        self.audiences.iter().any(|a| a == client_id)
    }
}

/// How the dashboard looks.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Branding {
    /// URL of a logo shown before the product name: https, a path on this
    /// server, or a `data:image/` URL.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Accent colour in the light theme, `#rrggbb`.
    #[serde(default)]
    pub accent_color: Option<String>,
    /// Accent colour in the dark theme, `#rrggbb`.
    #[serde(default)]
    pub accent_color_dark: Option<String>,
}

/// Terminals offered by the dashboard.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalsConfig {
    /// Shortcuts offered to everyone (verified: they come from this file).
    #[serde(default)]
    pub shortcuts: Vec<super::shortcuts::Shortcut>,
    /// Namespaces searched, as the user, for ConfigMaps labelled
    /// `portico.dev/terminal-shortcuts`; their shortcuts are shown as
    /// unverified. The namespaces of the user's own Terminals and Deployments
    /// are searched too.
    #[serde(default)]
    pub shortcut_namespaces: Vec<String>,
    /// Warn this many minutes before a terminal or the session ends.
    #[serde(default = "default_warn_minutes")]
    pub warn_minutes: u32,
}

/// A user of the development login page.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DevUser {
    /// User name.
    pub name: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The OpenID Connect provider and how to read a user from its ID token.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcConfig {
    /// Issuer URL (discovery at `/.well-known/openid-configuration`).
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// A file holding the client secret.
    pub client_secret_file: PathBuf,
    /// A PEM file with the CA of the issuer's serving certificate, when it
    /// is not one the system trusts; kubeconfigs made for the issuer carry it.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Scopes besides `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// ID-token claim used as the Kubernetes user name.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// ID-token claim holding the groups (an array of strings, or one string).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Put before every user name, as kube-apiserver's
    /// `--oidc-username-prefix`: absent, names from a claim other than
    /// `email` get the issuer URL and `#` (`https://login.example.com#alice`);
    /// `"-"` puts nothing. Set it as the API server has it, so RBAC names
    /// the same users.
    #[serde(default)]
    pub username_prefix: Option<String>,
    /// Put before every group, as `--oidc-groups-prefix` (absent: nothing).
    #[serde(default)]
    pub groups_prefix: Option<String>,
    /// With this set, every active session's refresh token is used this
    /// often (seconds): a session the provider refuses (a user disabled or
    /// logged out there), or whose user or groups it now names differently,
    /// ends. Dex issues refresh tokens only with the `offline_access` scope.
    #[serde(default)]
    pub refresh_seconds: Option<u32>,
    /// Ending a session also ends it at the provider (OpenID Connect
    /// RP-initiated logout) when the provider advertises an
    /// `end_session_endpoint`; register `<publicUrl>/logged-out` there as a
    /// post-logout redirect URI.
    #[serde(default = "default_true")]
    pub logout_at_provider: bool,
}

impl OidcConfig {
    /// The user-name prefix as kube-apiserver applies it.
    pub fn username_prefix(&self) -> String {
        match self.username_prefix.as_deref().filter(|p| !p.is_empty()) {
            Some("-") => String::new(),
            Some(p) => p.to_string(),
            None if self.username_claim == "email" => String::new(),
            None => format!("{}#", self.issuer),
        }
    }

    /// The groups prefix.
    pub fn groups_prefix(&self) -> &str {
        self.groups_prefix.as_deref().unwrap_or_default()
    }
}

/// Where and under which profile logins claim their session.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionConfig {
    /// Session profile (from the operator configuration).
    pub profile: String,
    /// Namespace of the SessionClaims (users must be allowed to create them there).
    pub namespace: String,
}

fn default_listen() -> SocketAddr {
    "0.0.0.0:8080".parse().expect("address")
}
fn default_catalog() -> Vec<String> {
    vec!["portico-catalog".into()]
}
fn default_admins() -> Vec<String> {
    vec!["portico-admins".into()]
}
fn default_product() -> String {
    "Portico".into()
}
fn default_assets_dir() -> PathBuf {
    "/usr/share/portico/node_modules".into()
}
fn default_warn_minutes() -> u32 {
    5
}
fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into(), "groups".into()]
}
fn default_username_claim() -> String {
    "email".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_true() -> bool {
    true
}

/// `apiServer` against `oidc`: the key under `apiServer` and what is wrong.
fn check_api_server(api: &ApiServerLogin, oidc: Option<&OidcConfig>) -> Result<(), (&'static str, String)> {
    let Some(oidc) = oidc else {
        return Err((
            "server",
            "needs oidc: the API server trusts the same login provider as the dashboard".into(),
        ));
    };
    if !api.server.starts_with("https://") {
        return Err(("server", format!("{:?} is not an https:// URL", api.server)));
    }
    if api.audiences.is_empty() {
        return Err((
            "audiences",
            "name at least one: the API server's --oidc-client-id, or its configuration's audiences".into(),
        ));
    }
    if let Some(id) = &api.kubectl_client_id
        && !api.accepts_client(id)
    {
        return Err((
            "kubectlClientId",
            format!("{id:?} is not among audiences, so the API server would refuse its tokens"),
        ));
    }
    if api.kubectl_client_id.as_deref() == Some(oidc.client_id.as_str()) {
        return Err((
            "kubectlClientId",
            format!(
                "{:?} is the dashboard's own client, which has a secret; name a public client (no secret, PKCE) for kubectl",
                oidc.client_id
            ),
        ));
    }
    if api.dashboard_acts_with == ActsWith::Token && oidc.refresh_seconds.is_none() {
        return Err((
            "dashboardActsWith",
            "token needs oidc.refreshSeconds (below the provider's ID-token lifetime), or every session ends when its first ID token expires".into(),
        ));
    }
    if api.dashboard_acts_with == ActsWith::Token && !api.accepts_client(&oidc.client_id) {
        return Err((
            "dashboardActsWith",
            format!(
                "token needs the dashboard's client {:?} among audiences, or the API server refuses its users' tokens",
                oidc.client_id
            ),
        ));
    }
    Ok(())
}

impl UiConfig {
    /// Parses YAML text and checks it.
    pub fn from_yaml(text: &str) -> Result<UiConfig, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let cfg: UiConfig = serde_path_to_error::deserialize(de).map_err(|e| ConfigError::Invalid {
            key: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        };
        match (&cfg.oidc, &cfg.dev_users) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "devUsers",
                    "set either oidc or devUsers (development only), not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "oidc",
                    "required: the OpenID Connect provider users log in with",
                ));
            }
            (Some(_), None) if cfg.cookie_key_file.is_none() => {
                return Err(invalid(
                    "cookieKeyFile",
                    "required with oidc, so sessions survive restarts and replicas agree",
                ));
            }
            _ => {}
        }
        if let Some(o) = &cfg.oidc
            && o.refresh_seconds.is_some_and(|s| s == 0 || s > 86_400)
        {
            return Err(invalid(
                "oidc.refreshSeconds",
                "must be between 1 and 86400 seconds (a day); leave it out to not refresh",
            ));
        }
        let issuer = cfg.oidc.as_ref().map(|o| o.issuer.clone());
        let prometheus = cfg.prometheus.as_ref().map(|p| p.url.clone());
        for name in cfg.prometheus.iter().flat_map(|p| p.source.keys()) {
            let mut chars = name.chars();
            let label = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !label {
                return Err(invalid(
                    "prometheus.source",
                    &format!("{name:?} is not a Prometheus label name (letters, digits and _, not first a digit)"),
                ));
            }
        }
        for (key, url) in [
            ("publicUrl", Some(&cfg.public_url)),
            ("oidc.issuer", issuer.as_ref()),
            ("prometheus.url", prometheus.as_ref()),
        ] {
            let Some(url) = url else { continue };
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    message: format!("{url:?} is not an http(s) URL"),
                });
            }
        }
        for (key, colour) in [
            ("branding.accentColor", &cfg.branding.accent_color),
            ("branding.accentColorDark", &cfg.branding.accent_color_dark),
        ] {
            if let Some(c) = colour
                && !is_hex_colour(c)
            {
                return Err(invalid(key, &format!("{c:?} is not a colour like \"#2563eb\"")));
            }
        }
        if let Some(logo) = &cfg.branding.logo_url
            && !(logo.starts_with("https://")
                || (logo.starts_with('/') && !logo.starts_with("//"))
                || logo.starts_with("data:image/"))
        {
            return Err(invalid(
                "branding.logoUrl",
                &format!("{logo:?} must be an https:// URL, a path on this server or a data:image/ URL"),
            ));
        }
        if let Some(api) = &cfg.api_server {
            check_api_server(api, cfg.oidc.as_ref()).map_err(|(key, m)| invalid(&format!("apiServer.{key}"), &m))?;
        }
        check_clusters(&cfg.clusters).map_err(|(key, m)| invalid(&key, &m))?;
        for (i, sc) in cfg.terminals.shortcuts.iter().enumerate() {
            sc.check()
                .map_err(|m| invalid(&format!("terminals.shortcuts[{i}] ({})", sc.name), &m))?;
        }
        Ok(cfg)
    }

    /// How many HTTP worker threads to run: `workers`, or the CPU count.
    pub fn worker_count(&self) -> usize {
        self.workers
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, std::num::NonZeroUsize::get)
    }

    /// Reads and checks a file.
    pub fn load(path: &std::path::Path) -> Result<UiConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text)
    }
}

fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "publicUrl: http://127.0.0.1:8080\noidc: {issuer: 'http://127.0.0.1:9', clientId: portico, clientSecretFile: /s}\ncookieKeyFile: /k\nsession: {profile: developer, namespace: portico-sessions}\n";

    #[test]
    fn prometheus_is_an_http_url() {
        let c = UiConfig::from_yaml(&format!("{OK}prometheus: {{url: 'http://prometheus:9090'}}\n")).unwrap();
        assert_eq!(c.prometheus.unwrap().url, "http://prometheus:9090");
        let c = UiConfig::from_yaml(&format!(
            "{OK}prometheus: {{url: 'http://p:9090', source: {{namespace: portico-system}}}}\n"
        ))
        .unwrap();
        assert_eq!(c.prometheus.unwrap().source["namespace"], "portico-system");
        let e = UiConfig::from_yaml(&format!(
            "{OK}prometheus: {{url: 'http://p:9090', source: {{'a-b': x}}}}\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("prometheus.source"), "{e}");
        let e = UiConfig::from_yaml(&format!("{OK}prometheus: {{url: 'prometheus:9090'}}\n")).unwrap_err();
        assert!(e.to_string().contains("prometheus.url"), "{e}");
    }

    #[test]
    fn clusters_have_names_titles_and_a_secret_each() {
        let with = |clusters: &str| UiConfig::from_yaml(&format!("{OK}clusters: {clusters}\n"));
        let c = with("[{name: cluster-b, title: Cluster B, secretName: cluster-b, kubeconfigFile: /b}]").unwrap();
        assert_eq!(c.clusters[0].secret_key, "kubeconfig");
        assert!(UiConfig::from_yaml(OK).unwrap().clusters.is_empty());
        for (clusters, says) in [
            (
                "[{name: B, title: b, secretName: b, kubeconfigFile: /b}]",
                "clusters[0].name",
            ),
            (
                "[{name: b, title: ' ', secretName: b, kubeconfigFile: /b}]",
                "clusters[0].title",
            ),
            (
                "[{name: b, title: b, secretName: 'B_1', kubeconfigFile: /b}]",
                "clusters[0].secretName",
            ),
            (
                "[{name: b, title: b, secretName: s, kubeconfigFile: /b}, {name: b, title: c, secretName: t, kubeconfigFile: /c}]",
                "`clusters[1].name`: \"b\" names clusters[0] too",
            ),
            (
                "[{name: b, title: b, secretName: s, kubeconfigFile: /b}, {name: c, title: c, secretName: s, secretKey: k, kubeconfigFile: /c}]",
                "is clusters[0]'s",
            ),
            ("[{name: b, title: b, secretName: s}]", "kubeconfigFile"),
        ] {
            let e = with(clusters).unwrap_err().to_string();
            assert!(e.contains(says), "{clusters}: {e}");
        }
    }

    #[test]
    fn a_minimal_file_loads_with_defaults() {
        let c = UiConfig::from_yaml(OK).unwrap();
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(c.worker_count(), cpus);
        assert_eq!(c.oidc.unwrap().username_claim, "email");
        assert_eq!(c.catalog_namespaces, ["portico-catalog"]);
    }

    #[test]
    fn login_provider_settings_have_kube_apiserver_defaults_and_bounds() {
        let o = UiConfig::from_yaml(OK).unwrap().oidc.unwrap();
        assert_eq!((o.username_prefix(), o.groups_prefix()), (String::new(), ""));
        assert!(o.logout_at_provider && o.refresh_seconds.is_none());
        let other = OK.replace("clientId: portico", "clientId: portico, usernameClaim: sub");
        let o = UiConfig::from_yaml(&other).unwrap().oidc.unwrap();
        assert_eq!(o.username_prefix(), "http://127.0.0.1:9#");
        let empty = OK.replace(
            "clientId: portico",
            "clientId: portico, usernameClaim: sub, usernamePrefix: ''",
        );
        let o = UiConfig::from_yaml(&empty).unwrap().oidc.unwrap();
        assert_eq!(
            o.username_prefix(),
            "http://127.0.0.1:9#",
            "empty is unset, as for kube-apiserver"
        );
        let none = OK.replace(
            "clientId: portico",
            "clientId: portico, usernameClaim: sub, usernamePrefix: '-'",
        );
        assert_eq!(UiConfig::from_yaml(&none).unwrap().oidc.unwrap().username_prefix(), "");
        for bad in ["0", "86401"] {
            let e = UiConfig::from_yaml(&OK.replace(
                "clientId: portico",
                &format!("clientId: portico, refreshSeconds: {bad}"),
            ))
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("oidc.refreshSeconds") && e.contains("between 1 and 86400"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_api_servers_login_is_checked_against_the_dashboards() {
        let with = |api: &str| UiConfig::from_yaml(&format!("{OK}apiServer: {api}\n"));
        let c = with("{server: 'https://api:6443', audiences: [portico, kubectl], kubectlClientId: kubectl}").unwrap();
        let api = c.api_server.unwrap();
        assert_eq!(api.dashboard_acts_with, ActsWith::Impersonation);
        assert!(api.accepts_client("portico") && !api.accepts_client("other"));
        let refused = |api: &str, key: &str, says: &str| {
            let e = with(api).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(says), "{api}: {e}");
        };
        refused(
            "{server: 'http://api:6443', audiences: [a]}",
            "apiServer.server",
            "https://",
        );
        refused(
            "{server: 'https://api', audiences: []}",
            "apiServer.audiences",
            "at least one",
        );
        refused(
            "{server: 'https://api', audiences: [portico], kubectlClientId: kubectl}",
            "apiServer.kubectlClientId",
            "not among audiences",
        );
        let refreshing = |api: &str| {
            UiConfig::from_yaml(&format!(
                "{}apiServer: {api}\n",
                OK.replace("clientId: portico", "clientId: portico, refreshSeconds: 60")
            ))
        };
        let e = refreshing("{server: 'https://api', audiences: [kubectl], dashboardActsWith: token}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("apiServer.dashboardActsWith") && e.contains("\"portico\" among audiences"),
            "{e}"
        );
        let ok = refreshing("{server: 'https://api', audiences: [portico], dashboardActsWith: token}").unwrap();
        assert_eq!(ok.api_server.unwrap().dashboard_acts_with, ActsWith::Token);
        refused(
            "{server: 'https://api', audiences: [portico], dashboardActsWith: token}",
            "apiServer.dashboardActsWith",
            "oidc.refreshSeconds",
        );
        refused(
            "{server: 'https://api', audiences: [portico], kubectlClientId: portico}",
            "apiServer.kubectlClientId",
            "public client",
        );
        refused(
            "{server: 'https://api', audiences: [a], dashboardActsWith: sudo}",
            "apiServer.dashboardActsWith",
            "unknown variant",
        );
        let dev = "publicUrl: http://x\ndevUsers: [{name: a}]\nsession: {profile: p, namespace: n}\napiServer: {server: 'https://api', audiences: [a]}\n";
        let e = UiConfig::from_yaml(dev).unwrap_err().to_string();
        assert!(e.contains("needs oidc"), "{e}");
    }

    #[test]
    fn workers_are_set_or_follow_the_cpus_and_zero_is_named() {
        let c = UiConfig::from_yaml(&format!("{OK}workers: 3\n")).unwrap();
        assert_eq!(c.worker_count(), 3);
        let e = UiConfig::from_yaml(&format!("{OK}workers: 0\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("workers"), "{e}");
    }

    #[test]
    fn trusted_proxies_are_networks_and_a_bad_one_is_named() {
        let c = UiConfig::from_yaml(&format!("{OK}trustedProxies: [10.0.0.0/8, 192.0.2.1]\n")).unwrap();
        assert!(c.trusted_proxies.contains("10.2.3.4".parse().unwrap()));
        assert!(!c.trusted_proxies.contains("203.0.113.1".parse().unwrap()));
        let e = UiConfig::from_yaml(&format!("{OK}trustedProxies: [10.0.0.0/8, my-ingress]\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("trustedProxies[1]") && e.contains("\"my-ingress\""), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = UiConfig::from_yaml(&OK.replace("clientId", "clientID"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("oidc") && e.contains("clientID"), "{e}");
        let e = UiConfig::from_yaml(&OK.replace("http://127.0.0.1:8080", "localhost"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("publicUrl"), "{e}");
        let e = UiConfig::from_yaml(&OK.replace("cookieKeyFile: /k\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cookieKeyFile"), "{e}");
        let e = UiConfig::from_yaml(&format!("{OK}branding: {{accentColor: 'red;}} body{{x:y'}}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("branding.accentColor"), "{e}");
        for bad in [
            "javascript:alert(1)",
            "data:text/html,<script>x</script>",
            "//evil.example/x.png",
        ] {
            let e = UiConfig::from_yaml(&format!("{OK}branding: {{logoUrl: '{bad}'}}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("branding.logoUrl"), "{bad}: {e}");
        }
        for good in [
            "https://example.com/logo.png",
            "/static/logo.svg",
            "data:image/png;base64,iVBORw0KGgo=",
        ] {
            UiConfig::from_yaml(&format!("{OK}branding: {{logoUrl: '{good}'}}\n")).unwrap();
        }
        let e = UiConfig::from_yaml(&format!(
            "{OK}terminals: {{shortcuts: [{{name: s, title: S, image: '', roles: []}}]}}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("terminals.shortcuts[0] (s)") && e.contains("image"), "{e}");
        let e = UiConfig::from_yaml(&format!("{OK}devUsers: [{{name: alice}}]\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("devUsers"), "{e}");
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn the_documented_example_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ui.yaml");
        let c = super::UiConfig::load(&path).unwrap();
        assert_eq!(c.session.namespace, "portico-sessions");
    }
}
