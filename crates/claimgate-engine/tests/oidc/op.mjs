// Minimal oidc-provider for claimgate-engine tests.
// Usage: node op.mjs [port]   (port 0 = ephemeral). Prints one JSON line {"issuer":...} when ready.
// POST /__rotate         -> new RSA+EC keys first, old keys still published (overlap)
// POST /__rotate?drop=1  -> new keys only (old kids gone)
import * as http from 'node:http';
import * as https from 'node:https';
import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? 0);
let gen = 0;
function newKeys() {
  gen += 1;
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [{ ...rsa, kid: `rsa-${gen}`, alg: 'RS256', use: 'sig' }, { ...ec, kid: `ec-${gen}`, alg: 'ES256', use: 'sig' }];
}

function makeProvider(issuer, keys) {
  const provider = new Provider(issuer, {
    jwks: { keys },
    clients: [{
      client_id: 'svc', client_secret: 'svc-secret',
      grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic', scope: 'api:read api:write',
    }],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => 'https://api.example/rs256',
        getResourceServerInfo: async (ctx, resource) => {
          const alg = { 'https://api.example/rs256': 'RS256', 'https://api.example/es256': 'ES256' }[resource];
          if (!alg) throw new errors.InvalidTarget();
          return { scope: 'api:read api:write', audience: resource, accessTokenTTL: 300,
                   accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
        },
      },
    },
    scopes: ['api:read', 'api:write'],
    ttl: { ClientCredentials: 300 },
  });
  return provider;
}

let current;
let keys = newKeys();
const tls = process.env.TLS_CERT ? { cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) } : null;
const handler = (req, res) => {
  if (req.method === 'POST' && req.url.startsWith('/__rotate')) {
    const fresh = newKeys();
    keys = req.url.includes('drop=1') ? fresh : [...fresh, ...keys];
    current = makeProvider(issuer, keys);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kids: keys.map((k) => k.kid) }));
    return;
  }
  current.callback()(req, res);
};
const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
let issuer;
server.listen(port, '127.0.0.1', () => {
  issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
  current = makeProvider(issuer, keys);
  console.log(JSON.stringify({ issuer }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
