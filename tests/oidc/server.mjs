// A real OpenID Connect provider (npm oidc-provider) for Portico's dashboard
// tests. Usage: node server.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI [HOST]
// (HOST, default 127.0.0.1: the address it listens on and names in its issuer,
// e.g. the node's bridge address for a dashboard running in a pod).
// Users (any password): alice, bob, dave, erin, frank, hank, ivy (developers), carol (portico-admins).
// Prints "ready ISSUER" on stdout once it listens.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri, host = '127.0.0.1'] = process.argv.slice(2);
const issuer = `http://${host}:${port}`;
const users = {
  alice: { groups: ['developers'] },
  bob: { groups: ['developers'] },
  carol: { groups: ['portico-admins'] },
  dave: { groups: ['developers'] },
  erin: { groups: ['developers'] },
  frank: { groups: ['developers'] },
  hank: { groups: ['developers'] },
  ivy: { groups: ['developers'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'], groups: ['groups'] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.com`, email_verified: true, preferred_username: id, groups: user.groups };
      },
    };
  },
});
provider.proxy = false;
provider.listen(Number(port), host, () => {
  console.log(`ready ${issuer}`);
});
