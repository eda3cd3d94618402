// panva's oidc-provider on loopback, set up as atlogin is for the load test:
// one confidential client `mas` (client_secret_basic, PKCE S256, RS256 ID
// tokens), and <count> authorization codes minted into its store for an
// account whose consent (Grant) is already given. Writes the codes to
// <codes-file>, one per line, then prints "ready".
//
//   node oidc-provider.mjs <port> <count> <codes-file>

import crypto from 'node:crypto'
import fs from 'node:fs'

import Provider from 'oidc-provider'

const [portText, countText, codesFile] = process.argv.slice(2)
const port = Number(portText)
const count = Number(countText)
const issuer = `http://127.0.0.1:${port}`
const REDIRECT = 'https://mas.example.com/upstream/callback/01HRPHARNESS00000000000001'
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
const ACCOUNT = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'

// An unbounded in-memory store: the library's quick-start adapter keeps only
// the last 1 000 items, fewer than the codes minted here. Nothing is written
// to disk, which favours oidc-provider against atlogin's SQLite.
const items = new Map()
class MapAdapter {
  constructor(name) {
    this.name = name
  }

  key(id) {
    return `${this.name}:${id}`
  }

  async upsert(id, payload) {
    items.set(this.key(id), payload)
    if (payload.grantId) {
      const grant = `grant:${payload.grantId}`
      items.set(grant, [...(items.get(grant) ?? []), this.key(id)])
    }
  }

  async find(id) {
    return items.get(this.key(id))
  }

  async findByUid(uid) {
    for (const [key, value] of items) {
      if (key.startsWith(`${this.name}:`) && value.uid === uid) return value
    }
    return undefined
  }

  async findByUserCode() {
    return undefined
  }

  async consume(id) {
    const payload = items.get(this.key(id))
    if (payload) payload.consumed = Math.floor(Date.now() / 1000)
  }

  async destroy(id) {
    items.delete(this.key(id))
  }

  async revokeByGrantId(grantId) {
    for (const key of items.get(`grant:${grantId}`) ?? []) items.delete(key)
    items.delete(`grant:${grantId}`)
  }
}

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', use: 'sig', alg: 'RS256' }

const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: [
    {
      client_id: 'mas',
      client_secret: process.env.MAS_SECRET,
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [jwk] },
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'] },
  findAccount: (_ctx, sub) => ({
    accountId: sub,
    claims: () => ({ sub, preferred_username: 'alice.example.com', name: 'Alice' }),
  }),
  features: { devInteractions: { enabled: false } },
  ttl: { AuthorizationCode: 600, AccessToken: 300, IdToken: 300, Grant: 3600 },
})

const client = await provider.Client.find('mas')
const grant = new provider.Grant({ accountId: ACCOUNT, clientId: 'mas' })
grant.addOIDCScope('openid profile')
const grantId = await grant.save()
const authTime = Math.floor(Date.now() / 1000)
const codes = []
for (let i = 0; i < count; i++) {
  const code = new provider.AuthorizationCode({
    accountId: ACCOUNT,
    client,
    grantId,
    redirectUri: REDIRECT,
    scope: 'openid profile',
    codeChallenge: CHALLENGE,
    codeChallengeMethod: 'S256',
    nonce: 'n',
    authTime,
  })
  codes.push(await code.save())
}
fs.writeFileSync(codesFile, codes.join('\n') + '\n')

provider.listen(port, '127.0.0.1', () => console.log('ready'))
process.on('SIGTERM', () => process.exit(0))
