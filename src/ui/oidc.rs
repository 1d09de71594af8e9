//! OpenID Connect authorization-code flow with PKCE (openidconnect crate):
//! the authorization URL, and the code exchange with the ID token's
//! signature, audience, expiry and nonce verified.

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
};

use super::{config::OidcConfig, cookies::LoginState};

/// Login failed; the message says why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OidcError(pub String);

fn err(what: &str) -> impl FnOnce(String) -> OidcError + '_ {
    move |e| OidcError(format!("{what}: {e}"))
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
}

/// The user an ID token names.
pub struct User {
    /// Kubernetes user name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
}

impl Provider {
    /// Discovers the issuer.
    pub async fn discover(config: &OidcConfig, secret: String, redirect: String) -> Result<Provider, OidcError> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError(e.to_string()))?;
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| err("issuer")(e.to_string()))?;
        let meta = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| err("OIDC discovery")(e.to_string()))?;
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
        })
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

    /// Exchanges the code and verifies the ID token; reads the user and groups claims.
    pub async fn finish(&self, code: String, login: &LoginState) -> Result<User, OidcError> {
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
        // The signature over exactly these bytes is verified above; read the
        // configured claims from its payload.
        let payload = id_token.to_string().split('.').nth(1).unwrap_or_default().to_string();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|e| err("ID token payload")(e.to_string()))?;
        let claims: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| err("ID token payload")(e.to_string()))?;
        let name = claims[&self.config.username_claim]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| OidcError(format!("the ID token has no {:?} claim", self.config.username_claim)))?
            .to_string();
        let groups = claims[&self.config.groups_claim]
            .as_array()
            .map(|a| a.iter().filter_map(|g| g.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Ok(User { name, groups })
    }
}
