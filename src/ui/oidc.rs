//! OpenID Connect with the login provider (openidconnect crate): the
//! authorization-code flow with PKCE and the ID token's signature, audience,
//! expiry and nonce verified; the refresh of a session's tokens; and the
//! provider's end-session URL (RP-initiated logout).

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndSessionUrl, IssuerUrl, LogoutRequest, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken, CoreTokenResponse},
};

use super::{
    claims::{self, User},
    config::OidcConfig,
    cookies::LoginState,
};

/// Login failed; the message says why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OidcError(pub String);

fn err(what: &str) -> impl FnOnce(String) -> OidcError + '_ {
    move |e| OidcError(format!("{what}: {e}"))
}

/// Refreshing a session's tokens failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider answered and refused (the user disabled, the grant
    /// revoked), or named the user differently: the session must end.
    #[error("{0}")]
    Refused(String),
    /// The provider could not be asked or gave no readable answer.
    #[error("{0}")]
    Unreachable(String),
}

/// The tokens a login or refresh got: the ID token (the hint of a logout at
/// the provider) and, where the provider issues one, the refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The ID token as issued.
    pub id_token: String,
    /// The refresh token.
    pub refresh: Option<String>,
}

/// A discovered provider and this dashboard's registration with it.
pub struct Provider {
    client: openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    http: openidconnect::reqwest::Client,
    config: OidcConfig,
    /// Where a logout at the provider goes, if it has one and it is wanted.
    end_session: Option<EndSessionUrl>,
}

impl Provider {
    /// Discovers the issuer.
    pub async fn discover(config: &OidcConfig, secret: String, redirect: String) -> Result<Provider, OidcError> {
        let mut http = openidconnect::reqwest::ClientBuilder::new();
        if let Some(file) = &config.ca_file {
            let pem =
                std::fs::read(file).map_err(|e| err("oidc.caFile")(format!("cannot read {}: {e}", file.display())))?;
            let ca = openidconnect::reqwest::Certificate::from_pem(&pem)
                .map_err(|e| err("oidc.caFile")(format!("{} holds no PEM certificate: {e}", file.display())))?;
            http = http.add_root_certificate(ca);
        }
        let http = http
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| OidcError(e.to_string()))?;
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| err("issuer")(e.to_string()))?;
        let meta = ProviderMetadataWithLogout::discover_async(issuer, &http)
            .await
            .map_err(|e| err("OIDC discovery")(e.to_string()))?;
        let end_session = meta
            .additional_metadata()
            .end_session_endpoint
            .clone()
            .filter(|_| config.logout_at_provider);
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(config.client_id.clone()),
            Some(ClientSecret::new(secret)),
        )
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| err("redirect URL")(e.to_string()))?);
        Ok(Provider {
            client,
            http,
            config: config.clone(),
            end_session,
        })
    }

    /// Whether sessions are refreshed at the provider.
    pub fn refreshes(&self) -> bool {
        self.config.refresh_seconds.is_some()
    }

    /// Where to send the browser, and what to remember until it comes back.
    pub fn start(&self) -> (String, LoginState) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in &self.config.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        let login = LoginState {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        };
        (url.to_string(), login)
    }

    /// Exchanges the code, verifies the ID token and reads the user from it.
    pub async fn finish(&self, code: String, login: &LoginState) -> Result<(User, Tokens), OidcError> {
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| err("token endpoint")(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| err("code exchange")(e.to_string()))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OidcError("the provider returned no ID token".into()))?;
        id_token
            .claims(&self.client.id_token_verifier(), &Nonce::new(login.nonce.clone()))
            .map_err(|e| err("ID token")(e.to_string()))?;
        let user = claims::user(&payload(id_token)?, &self.config).map_err(|e| OidcError(e.to_string()))?;
        let tokens = Tokens {
            id_token: id_token.to_string(),
            refresh: token.refresh_token().map(|r| r.secret().clone()),
        };
        if self.refreshes() && tokens.refresh.is_none() {
            return Err(OidcError(
                "the provider issued no refresh token, and the dashboard is set to refresh sessions \
                 (oidc.refreshSeconds): an administrator adds offline_access to oidc.scopes (Dex) or \
                 allows refresh tokens for this client at the provider"
                    .into(),
            ));
        }
        Ok((user, tokens))
    }

    /// Uses a session's refresh token; the provider's new ID token, if it
    /// sent one, is verified and must name the same user and groups.
    pub async fn refresh(&self, tokens: &Tokens, user: &User) -> Result<Tokens, RefreshError> {
        let Some(refresh) = &tokens.refresh else {
            return Err(RefreshError::Refused("the session has no refresh token".into()));
        };
        let answer: Result<CoreTokenResponse, _> = self
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
            .map_err(|e| RefreshError::Unreachable(format!("token endpoint: {e}")))?
            .request_async(&self.http)
            .await;
        let token = match answer {
            Ok(t) => t,
            Err(RequestTokenError::ServerResponse(e)) if *e.error() == CoreErrorResponseType::InvalidGrant => {
                return Err(RefreshError::Refused(format!("the provider refused the refresh: {e}")));
            }
            Err(e) => return Err(RefreshError::Unreachable(format!("refresh: {e}"))),
        };
        let id_token = match token.id_token() {
            Some(id) => {
                // Straight from the token endpoint over the connection the
                // client authenticated on: its issuer, audience and expiry
                // are checked, its signature need not be (OpenID Connect
                // Core 3.1.3.7), so keys the provider rotated since the
                // start do not end every session.
                let verifier = self.client.id_token_verifier().insecure_disable_signature_check();
                id.claims(&verifier, |_: Option<&Nonce>| Ok(()))
                    .map_err(|e| RefreshError::Refused(format!("refreshed ID token: {e}")))?;
                let now = payload(id)
                    .map_err(|e| RefreshError::Refused(e.to_string()))
                    .and_then(|c| claims::user(&c, &self.config).map_err(|e| RefreshError::Refused(e.to_string())))?;
                if &now != user {
                    return Err(RefreshError::Refused(format!(
                        "the provider now names the user {:?} in groups {:?}; log in again",
                        now.name, now.groups
                    )));
                }
                id.to_string()
            }
            None => tokens.id_token.clone(),
        };
        Ok(Tokens {
            id_token,
            refresh: token
                .refresh_token()
                .map(|r| r.secret().clone())
                .or_else(|| tokens.refresh.clone()),
        })
    }

    /// The origin of the end-session endpoint a logout goes on to.
    pub fn logout_origin(&self) -> Option<String> {
        self.end_session
            .as_ref()
            .map(|e| e.url().origin().ascii_serialization())
    }

    /// The provider's end-session URL for a logout, back to `after`.
    pub fn logout_url(&self, id_token: Option<&str>, after: &str) -> Option<String> {
        let end = self.end_session.clone()?;
        let mut req = LogoutRequest::from(end).set_client_id(ClientId::new(self.config.client_id.clone()));
        if let Some(hint) = id_token.and_then(|t| t.parse::<CoreIdToken>().ok()) {
            req = req.set_id_token_hint(&hint);
        }
        if let Ok(after) = PostLogoutRedirectUrl::new(after.to_string()) {
            req = req.set_post_logout_redirect_uri(after);
        }
        Some(req.http_get_url().to_string())
    }
}

/// An ID token's claims. Its signature over exactly these bytes is verified
/// before this is called.
fn payload(id_token: &CoreIdToken) -> Result<serde_json::Value, OidcError> {
    use base64::Engine;
    let text = id_token.to_string();
    let part = text.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| err("ID token payload")(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| err("ID token payload")(e.to_string()))
}
