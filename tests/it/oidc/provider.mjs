// The OpenID provider of the OIDC tests: npm `oidc-provider` (certified), run by the test
// with `node provider.mjs` on 127.0.0.1:$PORT; SIGTERM stops it.
//
// Environment:
//   PORT           the port (the issuer is http://127.0.0.1:$PORT)
//   REDIRECT_URIS  JSON list of the redirect URIs every client may use
//   ACCOUNTS_FILE  JSON file {"user": ["group", ...]}, read at each sign-in, so a test can
//                  change a user's groups between two logins
//
// Clients (secret "client-secret" each, client_secret_basic):
//   berth          a plain confidential client
//   berth-foreign  its ID token is swapped for one the provider issues to the client
//                  `intruder` for the same user and nonce (a token for another audience,
//                  as a token-substitution attack would bring)
//   berth-expired  its ID token is issued again with the provider's clock two hours back,
//                  so it expired an hour ago (oidc-provider only accepts positive lifetimes)
//   intruder       the other audience
// The login and consent pages are the provider's development interactions: any password
// is accepted for the account named.
import http from 'node:http';
import fs from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const redirectUris = JSON.parse(process.env.REDIRECT_URIS);
const accountsFile = process.env.ACCOUNTS_FILE;
const secret = 'client-secret';

const groupsOf = (id) => JSON.parse(fs.readFileSync(accountsFile, 'utf8'))[id] ?? [];

const client = (id) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: redirectUris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
});

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: ['berth', 'berth-foreign', 'berth-expired', 'intruder'].map(client),
  cookies: { keys: ['berth-test-cookie-key'] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name', 'groups'],
    email: ['email'],
  },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: `subject-${id}`,
          preferred_username: id,
          name: `${id} (test account)`,
          email: `${id}@example.org`,
          groups: groupsOf(id),
        };
      },
    };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

// The ID token of berth-foreign and berth-expired, issued again by the provider itself.
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const standard = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'azp', 'at_hash', 'c_hash', 's_hash', 'sub']);
provider.use(async (ctx, next) => {
  await next();
  const clientId = ctx.oidc?.client?.clientId;
  if (ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  if (clientId !== 'berth-foreign' && clientId !== 'berth-expired') return;
  const original = claimsOf(ctx.body.id_token);
  const audience = clientId === 'berth-foreign' ? await provider.Client.find('intruder') : ctx.oidc.client;
  const token = new provider.IdToken({ sub: original.sub }, { ctx, client: audience });
  token.scope = 'openid';
  for (const [k, v] of Object.entries(original)) {
    if (!standard.has(k)) token.set(k, v);
  }
  const realNow = Date.now;
  if (clientId === 'berth-expired') Date.now = () => realNow() - 2 * 3600 * 1000;
  try {
    ctx.body.id_token = await token.issue({ use: 'idtoken' });
  } finally {
    Date.now = realNow;
  }
});

const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
