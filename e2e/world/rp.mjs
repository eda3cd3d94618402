// A relying party built on panva's openid-client (an OpenID-certified
// library), for atlogin's end-to-end tests. The test's browser carries the
// authorization URL and brings back the redirect; this script does the rest as
// the library does it: discovery, PKCE, nonce and state, the code exchange
// with the ID token's checks (signature, iss, aud, exp, nonce, and the
// RFC 9207 iss of the redirect), and userinfo.
//
//   node rp.mjs start <issuer> <client-id> <secret> <redirect-uri> <alg> <state-file>
//     prints the authorization URL
//   node rp.mjs finish <state-file> <redirect-url>
//     prints {"alg", "claims", "userinfo"} as JSON

import fs from 'node:fs'
import * as client from 'openid-client'

async function configure(saved) {
  const options = {}
  // A loopback issuer is http; the library refuses that unless told.
  if (saved.issuer.startsWith('http://')) {
    options.execute = [client.allowInsecureRequests]
  }
  return client.discovery(
    new URL(saved.issuer),
    saved.clientId,
    { client_secret: saved.secret, id_token_signed_response_alg: saved.alg },
    client.ClientSecretBasic(saved.secret),
    options,
  )
}

const [command, ...args] = process.argv.slice(2)
if (command === 'start') {
  const [issuer, clientId, secret, redirectUri, alg, stateFile] = args
  const saved = {
    issuer,
    clientId,
    secret,
    redirectUri,
    alg,
    verifier: client.randomPKCECodeVerifier(),
    nonce: client.randomNonce(),
    state: client.randomState(),
  }
  const config = await configure(saved)
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(saved.verifier),
    code_challenge_method: 'S256',
    nonce: saved.nonce,
    state: saved.state,
  })
  fs.writeFileSync(stateFile, JSON.stringify(saved))
  console.log(url.href)
} else if (command === 'finish') {
  const [stateFile, redirectUrl] = args
  const saved = JSON.parse(fs.readFileSync(stateFile, 'utf8'))
  const config = await configure(saved)
  const tokens = await client.authorizationCodeGrant(config, new URL(redirectUrl), {
    pkceCodeVerifier: saved.verifier,
    expectedNonce: saved.nonce,
    expectedState: saved.state,
    idTokenExpected: true,
  })
  const claims = tokens.claims()
  const header = JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url').toString())
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  console.log(JSON.stringify({ alg: header.alg, claims, userinfo }))
} else {
  console.error('usage: node rp.mjs start ... | finish ...')
  process.exit(2)
}
