//! What every dashboard handler shares: the configuration, the cookie key,
//! the login provider, sessions checked on every request against a
//! SessionClaim watch cache (which also ends the streams of ended
//! sessions), the page templates, the catalog and the live caches, and one
//! bounded cache of clients impersonating users.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    cookie::Key,
    http::{StatusCode, header},
    web,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams},
    runtime::{WatchStreamExt, reflector, reflector::Store, watcher},
};
use minijinja::{Environment, context, value::Serde};

use super::{
    config::UiConfig,
    cookies::{self, SESSION_COOKIE, Session},
    oidc::Provider,
    page::PageError,
};
use crate::api::SessionClaim;

/// Heartbeats for one session at most this often.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(60);
use super::impersonate::{Impersonator, MAX_USER_CLIENTS};

/// What every handler shares.
pub struct UiState {
    pub(super) cfg: UiConfig,
    pub(super) key: Key,
    pub(super) provider: Option<Provider>,
    /// The dashboard's identity here, and clients impersonating users with it.
    local: Impersonator,
    /// The other clusters the dashboard knows.
    pub(super) clusters: super::clusters::Clusters,
    claims: Store<SessionClaim>,
    pub(super) live: super::live::Live,
    /// The template catalog, from a watch cache.
    pub(super) catalog: super::catalog_cache::Catalog,
    /// The Events about Deployments, from a watch cache.
    pub(super) events: super::events::Events,
    /// The namespaces' names, from a watch cache.
    namespaces: super::namespaces::Namespaces,
    /// The page templates (also the watch's, which renders the list rows).
    pages: Arc<Environment<'static>>,
    heartbeats: Mutex<HashMap<String, Instant>>,
    /// Login attempts per client.
    pub(super) login_limit: Arc<super::login_limit::LoginLimit>,
    /// The end signals of sessions with open streams.
    pub(super) ends: Arc<super::session_ends::SessionEnds>,
    /// The terminal shortcuts each user was offered lately.
    pub(super) shortcuts_seen: super::terminals::ShortcutsSeen,
    /// Prometheus for Insights' delivery figures: its URL and a client.
    pub(super) prometheus: Option<super::delivery::Prometheus>,
    /// The other clusters each user was offered lately.
    pub(super) clusters_seen: super::terminals::ClustersSeen,
    /// Where each user may list each kind, as the API server answered lately.
    readable: super::readable::ReadableCache,
    /// The sessions refreshed at the login provider.
    pub(super) refreshes: super::provider_session::Refreshes,
    /// The Content-Security-Policies of pages.
    pub(super) csp: super::server::Csp,
    /// The API server's trust in the login provider, with its CA files read.
    pub(super) api_server: Option<ApiServerTrust>,
    /// The newest ID token seen for each user, where the dashboard acts
    /// with users' own tokens.
    id_tokens: Mutex<HashMap<String, String>>,
    /// Clients acting with an ID token, by token.
    token_clients: Mutex<HashMap<String, Client>>,
}

/// `apiServer` of the configuration, with the certificates it names.
pub struct ApiServerTrust {
    pub cfg: super::config::ApiServerLogin,
    /// The API server's CA (PEM), from `apiServer.caFile`.
    pub server_ca: Option<String>,
    /// The issuer's CA (PEM), from `oidc.caFile`.
    pub issuer_ca: Option<String>,
}

impl ApiServerTrust {
    fn load(cfg: &UiConfig) -> Result<Option<ApiServerTrust>, String> {
        let Some(api) = &cfg.api_server else { return Ok(None) };
        let read = |key: &str, file: Option<&std::path::PathBuf>| {
            file.map(|f| {
                let pem = std::fs::read_to_string(f).map_err(|e| format!("{key}: cannot read {}: {e}", f.display()))?;
                match pem.contains("-----BEGIN CERTIFICATE-----") {
                    true => Ok(pem),
                    false => Err(format!("{key}: {} holds no PEM certificate", f.display())),
                }
            })
            .transpose()
        };
        Ok(Some(ApiServerTrust {
            cfg: api.clone(),
            server_ca: read("apiServer.caFile", api.ca_file.as_ref())?,
            issuer_ca: read("oidc.caFile", cfg.oidc.as_ref().and_then(|o| o.ca_file.as_ref()))?,
        }))
    }
}

pub(super) fn pages(cfg: &UiConfig) -> Environment<'static> {
    let mut env = Environment::new();
    env.add_global("product", cfg.product_name.clone());
    env.add_global("branding", minijinja::Value::from(Serde(&cfg.branding)));
    env.add_global("warn_minutes", cfg.terminals.warn_minutes);
    // The titles of the other clusters, by the Secret a Terminal names them with.
    let titles: std::collections::BTreeMap<&str, &str> = cfg
        .clusters
        .iter()
        .map(|c| (c.secret_name.as_str(), c.title.as_str()))
        .collect();
    env.add_global("cluster_titles", minijinja::Value::from(Serde(&titles)));
    env.add_filter("when", |v: String| super::format::when(&v));
    env.add_filter("duration", super::insights::duration);
    for (name, src) in [
        ("base.html", include_str!("../../ui/templates/base.html")),
        ("catalog.html", include_str!("../../ui/templates/catalog.html")),
        ("message.html", include_str!("../../ui/templates/message.html")),
        ("new.html", include_str!("../../ui/templates/new.html")),
        ("deployments.html", include_str!("../../ui/templates/deployments.html")),
        ("deployment.html", include_str!("../../ui/templates/deployment.html")),
        (
            "deployment_pods.html",
            include_str!("../../ui/templates/deployment_pods.html"),
        ),
        ("pods_list.html", include_str!("../../ui/templates/pods_list.html")),
        ("kubectl.html", include_str!("../../ui/templates/kubectl.html")),
        (
            "deployment_row.html",
            include_str!("../../ui/templates/deployment_row.html"),
        ),
        ("account.html", include_str!("../../ui/templates/account.html")),
        (
            "account_token.html",
            include_str!("../../ui/templates/account_token.html"),
        ),
        ("sessions.html", include_str!("../../ui/templates/sessions.html")),
        ("dev_login.html", include_str!("../../ui/templates/dev_login.html")),
        (
            "session_limit.html",
            include_str!("../../ui/templates/session_limit.html"),
        ),
        ("terminals.html", include_str!("../../ui/templates/terminals.html")),
        (
            "cluster_choice.html",
            include_str!("../../ui/templates/cluster_choice.html"),
        ),
        ("terminal.html", include_str!("../../ui/templates/terminal.html")),
        (
            "terminal_row.html",
            include_str!("../../ui/templates/terminal_row.html"),
        ),
        ("logs.html", include_str!("../../ui/templates/logs.html")),
        ("access.html", include_str!("../../ui/templates/access.html")),
        ("search.html", include_str!("../../ui/templates/search.html")),
        ("insights.html", include_str!("../../ui/templates/insights.html")),
        (
            "insights_usage.html",
            include_str!("../../ui/templates/insights_usage.html"),
        ),
        ("access_user.html", include_str!("../../ui/templates/access_user.html")),
        (
            "access_index.html",
            include_str!("../../ui/templates/access_index.html"),
        ),
    ] {
        env.add_template(name, src).expect("built-in templates parse");
    }
    env
}

impl UiState {
    /// Discovers the OIDC provider and starts the SessionClaim watch.
    pub async fn new(
        cfg: UiConfig,
        base: kube::Config,
        key: Key,
        secret: Option<String>,
    ) -> Result<Arc<UiState>, String> {
        let redirect = format!("{}/auth/callback", cfg.public_url.trim_end_matches('/'));
        let provider = match (&cfg.oidc, secret) {
            (Some(oidc), Some(secret)) => Some(
                Provider::discover(oidc, secret, redirect)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            _ => None,
        };
        let client = Client::try_from(base.clone()).map_err(|e| e.to_string())?;
        let (claims, writer) = reflector::store();
        let api: Api<SessionClaim> = Api::namespaced(client.clone(), &cfg.session.namespace);
        let stream = reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
        // The watch also ends the streams of sessions whose claim ended.
        let ends = Arc::new(super::session_ends::SessionEnds::default());
        let (watching, store) = (ends.clone(), claims.clone());
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(event) = futures::StreamExt::next(&mut stream).await {
                if let Ok(event) = event {
                    watching.observe(&event, &store);
                }
            }
        });
        claims.wait_until_ready().await.map_err(|e| e.to_string())?;
        let pages = Arc::new(pages(&cfg));
        let (live, catalog, events, namespaces) = futures::join!(
            super::live::start(client.clone(), pages.clone()),
            super::catalog_cache::Catalog::start(&client, &cfg.catalog_namespaces),
            super::events::start(client.clone()),
            super::namespaces::start(client.clone()),
        );
        let live = live?;
        let cfg_proxies = cfg.trusted_proxies.clone();
        let api_server = ApiServerTrust::load(&cfg)?;
        let clusters = super::clusters::Clusters::load(&cfg.clusters).await?;
        let prometheus = match &cfg.prometheus {
            Some(p) => Some(super::delivery::Prometheus {
                source: super::delivery::source(&p.source),
                url: p.url.clone(),
                http: openidconnect::reqwest::ClientBuilder::new()
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("prometheus.url: {e}"))?,
            }),
            None => None,
        };
        Ok(Arc::new(UiState {
            api_server,
            id_tokens: Mutex::new(HashMap::new()),
            token_clients: Mutex::new(HashMap::new()),
            live,
            catalog,
            events,
            namespaces,
            pages,
            cfg,
            key,
            local: Impersonator::new(base),
            clusters,
            claims,
            heartbeats: Mutex::new(HashMap::new()),
            login_limit: super::login_limit::LoginLimit::start(cfg_proxies),
            ends,
            shortcuts_seen: super::recent::Recent::new(super::terminals::SHORTCUTS_SEEN_FOR, MAX_USER_CLIENTS),
            prometheus,
            clusters_seen: super::recent::Recent::new(super::terminals::SHORTCUTS_SEEN_FOR, MAX_USER_CLIENTS),
            readable: Default::default(),
            refreshes: Default::default(),
            csp: super::server::Csp::new(provider.as_ref().and_then(Provider::logout_origin).as_deref()),
            provider,
        }))
    }

    /// A client acting as the user, so the API server applies the user's RBAC.
    /// Made once per user and groups and kept (a bounded number), so pages
    /// reuse connections instead of a TLS handshake each.
    pub(super) fn as_user(&self, s: &Session) -> Result<Client, kube::Error> {
        if self.acts_with_tokens() {
            let token = self.id_token(&s.claim).ok_or_else(|| {
                kube::Error::Service(
                    format!(
                        "the ID token of {}'s login has expired and this dashboard acts with it; log in again",
                        s.user
                    )
                    .into(),
                )
            })?;
            return self.with_token(&token);
        }
        self.impersonating(s)
    }

    /// A client impersonating the user and their groups (the default way of
    /// acting as the user; in token mode, only to end a session whose ID
    /// token is gone).
    pub(super) fn impersonating(&self, s: &Session) -> Result<Client, kube::Error> {
        self.local.client(s)
    }

    /// Whether the dashboard acts with users' own ID tokens.
    pub(super) fn acts_with_tokens(&self) -> bool {
        self.api_server
            .as_ref()
            .is_some_and(|a| a.cfg.dashboard_acts_with == super::config::ActsWith::Token)
    }

    /// Whether the API server accepts the dashboard's own ID tokens (its
    /// client is among `apiServer.audiences`): then a login's ID token is a
    /// credential for the API server.
    pub(super) fn id_tokens_are_credentials(&self) -> bool {
        let client = self.cfg.oidc.as_ref().map(|o| o.client_id.as_str()).unwrap_or_default();
        self.api_server.as_ref().is_some_and(|a| a.cfg.accepts_client(client))
    }

    /// Keeps `token` as the newest ID token of the session of `claim`,
    /// unless one that lasts longer is kept already; drops expired ones.
    pub(super) fn note_id_token(&self, claim: &str, token: &str) {
        if !self.acts_with_tokens() {
            return;
        }
        use super::user_kubeconfig::{replaces, valid_for};
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let mut tokens = self.id_tokens.lock().unwrap();
        tokens.retain(|_, t| valid_for(t, now, 0));
        if replaces(tokens.get(claim).map(String::as_str), token, now) {
            tokens.insert(claim.to_string(), token.to_string());
        }
    }

    /// The ID token of the session of `claim` while it is valid for at
    /// least ten more seconds.
    pub(super) fn id_token(&self, claim: &str) -> Option<String> {
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        self.id_tokens
            .lock()
            .unwrap()
            .get(claim)
            .filter(|t| super::user_kubeconfig::valid_for(t, now, 10))
            .cloned()
    }

    /// A client sending an ID token of the user's: the API server
    /// authenticates the user itself, with no impersonation.
    pub(super) fn with_token(&self, token: &str) -> Result<Client, kube::Error> {
        let token = token.to_string();
        if let Some(c) = self.token_clients.lock().unwrap().get(&token) {
            return Ok(c.clone());
        }
        let mut c = self.local.base().clone();
        c.auth_info = kube::config::AuthInfo {
            token: Some(secrecy::SecretString::from(token.clone())),
            ..Default::default()
        };
        let client = Client::try_from(c)?;
        let mut clients = self.token_clients.lock().unwrap();
        if clients.len() >= MAX_USER_CLIENTS {
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            clients.retain(|t, _| super::user_kubeconfig::valid_for(t, now, 0));
            if clients.len() >= MAX_USER_CLIENTS {
                clients.clear();
            }
        }
        clients.insert(token, client.clone());
        Ok(client)
    }

    /// The cluster's namespaces, from the watch cache.
    pub(super) fn namespace_names(&self) -> Vec<String> {
        self.namespaces.read().unwrap().iter().cloned().collect()
    }

    /// Whether a session's claim is in the watch cache and not ending.
    pub(super) fn claim_alive(&self, claim: &str) -> bool {
        let key = reflector::ObjectRef::<SessionClaim>::new(claim).within(&self.cfg.session.namespace);
        self.claims
            .get(&key)
            .is_some_and(|c| c.metadata.deletion_timestamp.is_none())
    }

    /// Every SessionClaim, from the watch cache.
    pub(super) fn claims(&self) -> Vec<Arc<SessionClaim>> {
        self.claims.state()
    }

    /// The client configuration the dashboard runs with (its own identity).
    pub(super) fn base_config(&self) -> &kube::Config {
        self.local.base()
    }

    /// Whether the session belongs to an admin group.
    pub(super) fn is_admin(&self, s: &Session) -> bool {
        s.groups.iter().any(|g| self.cfg.admin_groups.contains(g))
    }

    /// The origin (`scheme://host:port`) of the public URL, as browsers send it in `Origin`.
    pub(super) fn public_origin(&self) -> String {
        let public = self.cfg.public_url.trim_end_matches('/');
        public
            .split_once("://")
            .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or_default()))
            .unwrap_or_default()
    }

    /// Whether a request comes from a page of this dashboard (its `Origin`
    /// is the public URL's), as a WebSocket must.
    pub(super) fn same_origin(&self, req: &HttpRequest) -> bool {
        req.headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| o == self.public_origin())
    }

    /// Reads one object as the user, or the page saying why not: `missing`
    /// (404) when it is not there, the API server's refusal (403) otherwise.
    pub(super) async fn get_as_user<K>(&self, s: &Session, ns: &str, name: &str, missing: &str) -> Result<K, PageError>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api = Api::<K>::namespaced(self.as_user(s).map_err(|e| self.unavailable(s, &e))?, ns);
        match api.get_opt(name).await {
            Ok(Some(o)) => Ok(o),
            Ok(None) => Err(self.refuse(Some(s), StatusCode::NOT_FOUND, "Not found", missing)),
            Err(e) => Err(self.refuse(
                Some(s),
                StatusCode::FORBIDDEN,
                "Refused",
                &format!("The API server refused to show it: {}", why(&e)),
            )),
        }
    }

    /// Deletes one object as the user; the refusal page when the API server says no.
    pub(super) async fn delete_as_user<K>(&self, s: &Session, ns: &str, name: &str) -> Result<(), PageError>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api = Api::<K>::namespaced(self.as_user(s).map_err(|e| self.unavailable(s, &e))?, ns);
        api.delete(name, &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(|e| {
                self.refuse(
                    Some(s),
                    StatusCode::FORBIDDEN,
                    "Not deleted",
                    &format!("The API server refused: {}", why(&e)),
                )
            })
    }

    /// A page for a logged-in user: `ctx` plus the session, its CSRF token and whether it is an admin's.
    pub(super) fn page(&self, page: &str, s: &Session, ctx: minijinja::Value) -> HttpResponse {
        self.render(page, self.page_context(s, ctx))
    }

    /// `ctx` plus what every logged-in page shows: the session, its CSRF token, whether it is an admin's.
    fn page_context(&self, s: &Session, ctx: minijinja::Value) -> minijinja::Value {
        context! {
            session => Serde(s), csrf => cookies::csrf_token(&self.key, s), admin => self.is_admin(s), ..ctx
        }
    }

    pub(super) fn render(&self, page: &str, ctx: minijinja::Value) -> HttpResponse {
        match self.pages.get_template(page).and_then(|t| t.render(ctx)) {
            Ok(html) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html),
            Err(e) => HttpResponse::InternalServerError().body(format!("page {page}: {e}")),
        }
    }

    /// The message page saying why a request was not served, with the
    /// layout: the navigation for a logged-in user `s`, a login link otherwise.
    pub(super) fn refuse(&self, s: Option<&Session>, status: StatusCode, heading: &str, text: &str) -> PageError {
        let ctx = context! { heading, text };
        let ctx = match s {
            Some(s) => self.page_context(s, ctx),
            None => ctx,
        };
        match self.pages.get_template("message.html").and_then(|t| t.render(ctx)) {
            Ok(html) => PageError::new(status, html),
            Err(e) => PageError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("page message.html: {e}")),
        }
    }

    /// Where `s` may list `kind` (among `namespaces`, unless everywhere), as
    /// the API server answered lately ([`super::readable`]).
    pub(super) async fn readable_for(
        &self,
        s: &Session,
        kind: super::readable::Question,
        namespaces: std::collections::BTreeSet<String>,
    ) -> Result<Arc<super::readable::Readable>, kube::Error> {
        let client = self.as_user(s)?;
        self.readable.get(s, kind, &client, namespaces).await
    }

    /// The namespaces where `s` may do what `q` asks (to offer in a form):
    /// all of them with a cluster-wide grant, else those among at most
    /// [`MAX_ASKED`](super::namespaces::MAX_ASKED) namespaces the API server
    /// allows; none when there are more, or when it cannot be asked (the
    /// field stays free text either way).
    pub(super) async fn where_may(&self, s: &Session, q: super::readable::Question) -> Vec<String> {
        let all = self.namespaces.read().unwrap().clone();
        let asked = match all.len() <= super::namespaces::MAX_ASKED {
            true => all.clone(),
            false => Default::default(),
        };
        match self.readable_for(s, q, asked).await {
            Ok(r) => all.into_iter().filter(|n| r.has(n)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the namespaces to offer could not be asked about");
                vec![]
            }
        }
    }

    /// Whether `s` may do what `q` asks in `namespace` (a kept answer); when
    /// the API server cannot be asked, yes: an action offered in vain is
    /// refused by the API server, one hidden in vain cannot be taken.
    pub(super) async fn may(&self, s: &Session, q: super::readable::Question, namespace: &str) -> bool {
        self.readable_for(s, q, [namespace.to_string()].into())
            .await
            .map_or(true, |r| r.has(namespace))
    }

    /// [`readable_for`](Self::readable_for) among the namespaces of `rows`,
    /// or the page saying the API server could not be asked.
    pub(super) async fn readable<R: super::rows::Row>(
        &self,
        s: &Session,
        kind: super::readable::Question,
        rows: &super::live::Rows<R>,
    ) -> Result<Arc<super::readable::Readable>, PageError> {
        // Read apart: the rows' lock is not held while the API server is asked.
        let namespaces = rows.read().unwrap().namespaces();
        self.readable_for(s, kind, namespaces)
            .await
            .map_err(|e| self.unavailable(s, &e))
    }

    /// The page for a client to the API server that could not be made for `s`.
    pub(super) fn unavailable(&self, s: &Session, e: &kube::Error) -> PageError {
        self.refuse(Some(s), StatusCode::BAD_GATEWAY, "Unavailable", &why(e))
    }

    /// [`refuse`](Self::refuse) as a response, for a request without a session.
    pub(super) fn message(&self, status: StatusCode, heading: &str, text: &str) -> HttpResponse {
        self.refuse(None, status, heading, text).error_response()
    }

    /// The valid session of this request, if any: a cookie that opens, has
    /// not expired, and whose SessionClaim is still active.
    pub(super) async fn session(&self, req: &HttpRequest) -> Option<Session> {
        let s: Session = cookies::open(&self.key, SESSION_COOKIE, &req.cookie(SESSION_COOKIE)?)?;
        if s.exp < k8s_openapi::jiff::Timestamp::now().as_second() {
            return None;
        }
        // Where sessions are refreshed at the provider, a session counts
        // only with its provider cookie (so none escapes the refresh) and
        // only until the provider refused it.
        if self.provider.as_ref().is_some_and(|p| p.refreshes())
            && (super::provider_session::cookie_of(self, req, &s).is_none() || self.refreshes.refused(&s.claim))
        {
            return None;
        }

        let key = reflector::ObjectRef::<SessionClaim>::new(&s.claim).within(&self.cfg.session.namespace);
        let claim = match self.claims.get(&key) {
            Some(c) => Some(c),
            // Just created and not yet in the watch cache: ask once.
            None => {
                let api: Api<SessionClaim> = Api::namespaced(self.as_user(&s).ok()?, &self.cfg.session.namespace);
                api.get_opt(&s.claim).await.ok().flatten().map(Arc::new)
            }
        }?;
        let mine = crate::creator::Creator::from_annotations(claim.metadata.annotations.as_ref())
            .is_ok_and(|c| c.user == s.user);
        if !(claim.metadata.deletion_timestamp.is_none() && mine) {
            return None;
        }
        // Acting with the user's own ID token, a session lasts while one of
        // its login is valid: the cookie's, or a newer one a refresh
        // brought. Then it ends, as logging out would.
        if self.acts_with_tokens() {
            if let Some(token) = super::provider_session::cookie_of(self, req, &s).and_then(|c| c.id_token) {
                self.note_id_token(&s.claim, &token);
            }
            if self.id_token(&s.claim).is_none() {
                tracing::info!(user = %s.user, claim = %s.claim, "session ended: its login's ID token expired");
                super::login::end_session(self, &s).await;
                return None;
            }
        }
        Some(s)
    }

    pub(super) fn heartbeat(self: &Arc<Self>, s: &Session) {
        {
            let mut beats = self.heartbeats.lock().unwrap();
            if beats.get(&s.claim).is_some_and(|t| t.elapsed() < HEARTBEAT_EVERY) {
                return;
            }
            beats.insert(s.claim.clone(), Instant::now());
        }
        let (state, s) = (self.clone(), s.clone());
        tokio::spawn(async move {
            let Ok(client) = state.as_user(&s) else { return };
            let api: Api<SessionClaim> = Api::namespaced(client, &state.cfg.session.namespace);
            if let Err(e) = keepalive(&api, &s.claim).await {
                tracing::warn!(user = %s.user, error = %e, "heartbeat failed");
            }
        });
    }
}

pub(super) type State = web::Data<Arc<UiState>>;

pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

/// The API server's refusal, in words.
pub(super) fn why(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Asks for a heartbeat on a Terminal or SessionClaim (the webhook records the server's time).
pub(super) async fn keepalive<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({"metadata": {"annotations": {crate::api::keys::OPERATION: "keepalive"}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_file_is_served() {
        let cfg =
            super::UiConfig::from_yaml("publicUrl: http://x\ndevUsers: []\nsession: {profile: p, namespace: n}\n")
                .unwrap();
        let env = super::pages(&cfg);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/templates");
        for f in std::fs::read_dir(dir).unwrap() {
            let name = f.unwrap().file_name().into_string().unwrap();
            assert!(env.get_template(&name).is_ok(), "{name} is not in pages()");
        }
    }

    #[test]
    fn the_configured_logo_is_in_every_page() {
        let cfg = super::UiConfig::from_yaml(
            "publicUrl: http://x\ndevUsers: []\nsession: {profile: p, namespace: n}\nbranding: {logoUrl: 'data:image/png;base64,iVBORw0KGgo='}\n",
        )
        .unwrap();
        let env = super::pages(&cfg);
        let html = env
            .get_template("message.html")
            .unwrap()
            .render(minijinja::context! { heading => "h", text => "t" })
            .unwrap();
        // The template escapes `/` as `&#x2f;`, which the browser reads back as `/`.
        assert!(
            html.contains(r#"<img src="data:image&#x2f;png;base64,iVBORw0KGgo=" alt="" height="28">"#),
            "{html}"
        );
    }
}
