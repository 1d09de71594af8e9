// A real OpenID Connect provider (npm oidc-provider) for Portico's dashboard
// tests. Usage: node server.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URIS [HOST]
// (REDIRECT_URIS: comma-separated `<dashboard>/auth/callback` URIs, each
// dashboard's `<dashboard>/logged-out` registered for logout; HOST, default
// 127.0.0.1: the address it listens on and names in its issuer, e.g. the
// node's bridge address for a dashboard running in a pod).
// Users (any password): alice, bob, dave, erin, frank, hank, ivy, kim, lee
// (developers), carol (portico-admins); mallory, whose e-mail is not
// verified; sysop, in the group system:masters.
// Like Keycloak it issues a refresh token with every login and rotates it on
// every refresh; it has an end_session_endpoint (RP-initiated logout).
// For tests, `POST /test/disable/USER` disables a user: refreshing their
// sessions fails from then on, as at a real provider.
// With TLS_CERT and TLS_KEY (PEM files) in its environment it serves HTTPS,
// as a provider an API server trusts must; ID_TOKEN_TTL (seconds) shortens
// the lifetime of its ID tokens.
// Besides the dashboard's client it has `kubectl`, a public client (no
// secret, PKCE) for kubectl's oidc-login plugin, redirecting to its local
// server at http://localhost:8000 or :18000.
// Prints "ready ISSUER" on stdout once it listens.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUris, host = '127.0.0.1'] = process.argv.slice(2);
const tls = process.env.TLS_CERT && process.env.TLS_KEY
  ? { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) }
  : null;
const issuer = `${tls ? 'https' : 'http'}://${host}:${port}`;
const developers = { groups: ['developers'] };
const users = {
  alice: developers,
  bob: developers,
  carol: { groups: ['portico-admins'] },
  dave: developers,
  erin: developers,
  frank: developers,
  hank: developers,
  ivy: developers,
  lee: developers,
  kim: developers,
  mallory: { groups: ['developers'], emailVerified: false },
  sysop: { groups: ['developers', 'system:masters'] },
};
const disabled = new Set();
const redirects = redirectUris.split(',');

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirects,
    post_logout_redirect_uris: redirects.map((r) => r.replace(/\/auth\/callback$/, '/logged-out')),
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
  }, {
    client_id: 'kubectl',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://localhost:8000', 'http://localhost:18000'],
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'], groups: ['groups'] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  // ID_TOKEN_TTL (seconds) shortens ID tokens, to test what outlives them.
  ...(process.env.ID_TOKEN_TTL ? { ttl: { IdToken: Number(process.env.ID_TOKEN_TTL) } } : {}),
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user || disabled.has(id)) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.com`,
          email_verified: user.emailVerified ?? true,
          preferred_username: id,
          groups: user.groups,
        };
      },
    };
  },
});
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/test\/disable\/([a-z]+)$/);
  if (ctx.method === 'POST' && m) {
    disabled.add(m[1]);
    ctx.status = 204;
    return;
  }
  await next();
});
provider.proxy = false;
const server = tls ? https.createServer(tls, provider.callback()) : provider;
server.listen(Number(port), host, () => {
  console.log(`ready ${issuer}`);
});
