// The real peers of atlogin's end-to-end tests, in one Node process on
// 127.0.0.1: an in-memory PLC directory and a PDS (with its OAuth
// authorization server) in development mode, plus the test accounts.
//
//   node world.mjs <run-dir> <plc-port> <pds-port>
//
// When everything is up it writes <run-dir>/state.json (URLs, accounts) and
// prints "ready". It runs until SIGTERM or SIGINT. Nothing here is a secret
// worth keeping: every run starts from an empty data folder, and the PLC
// lives in memory.

import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

const [runDir, plcPortText, pdsPortText] = process.argv.slice(2)
if (!runDir || !plcPortText || !pdsPortText) {
  console.error('usage: node world.mjs <run-dir> <plc-port> <pds-port>')
  process.exit(2)
}
const plcPort = Number(plcPortText)
const pdsPort = Number(pdsPortText)

// Both servers call listen(port) without a host, which binds every
// interface; tests talk to loopback only, so bind 127.0.0.1 (what
// "localhost" names on these machines).
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, args)
}

const dataDir = path.join(runDir, 'pds')
fs.rmSync(dataDir, { recursive: true, force: true })
fs.mkdirSync(path.join(dataDir, 'blobs'), { recursive: true })

const plcUrl = `http://localhost:${plcPort}`
const pdsUrl = `http://localhost:${pdsPort}`

Object.assign(process.env, {
  PDS_HOSTNAME: 'localhost',
  PDS_PORT: String(pdsPort),
  PDS_DATA_DIRECTORY: dataDir,
  PDS_BLOBSTORE_DISK_LOCATION: path.join(dataDir, 'blobs'),
  PDS_JWT_SECRET: crypto.randomBytes(32).toString('hex'),
  PDS_ADMIN_PASSWORD: crypto.randomBytes(16).toString('hex'),
  PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: crypto.randomBytes(32).toString('hex'),
  PDS_DID_PLC_URL: plcUrl,
  PDS_SERVICE_HANDLE_DOMAINS: '.test',
  PDS_INVITE_REQUIRED: 'false',
  // Development mode: an http issuer on localhost. It also turns off the
  // PDS's SSRF protection, which would refuse loopback client documents.
  PDS_DEV_MODE: 'true',
  LOG_ENABLED: process.env.ATLOGIN_E2E_PDS_LOG ? 'true' : 'false',
})

const plcServer = await import('@did-plc/server')
const { PDS, envToCfg, envToSecrets, readEnv } = await import('@atproto/pds')

const started = Date.now()
const plc = plcServer.PlcServer.create({ db: plcServer.Database.mock(), port: plcPort })
await plc.start()
const env = readEnv()
const pds = await PDS.create(envToCfg(env), envToSecrets(env))
await pds.start()

async function xrpc(method, body, token) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const response = await fetch(`${pdsUrl}/xrpc/${method}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  })
  const answer = await response.json()
  if (!response.ok) {
    throw new Error(`${method}: HTTP ${response.status} ${JSON.stringify(answer)}`)
  }
  return answer
}

// The accounts the tests sign in as. Alice has a display name in her
// profile; Bob has none, so his name falls back to his handle.
const accounts = [
  { handle: 'alice.test', password: 'alice-password', displayName: 'Alice Example' },
  { handle: 'bob.test', password: 'bob-password', displayName: null },
]
for (const account of accounts) {
  const created = await xrpc('com.atproto.server.createAccount', {
    handle: account.handle,
    email: `${account.handle.split('.')[0]}@example.com`,
    password: account.password,
  })
  account.did = created.did
  if (account.displayName) {
    await xrpc(
      'com.atproto.repo.putRecord',
      {
        repo: created.did,
        collection: 'app.bsky.actor.profile',
        rkey: 'self',
        record: { $type: 'app.bsky.actor.profile', displayName: account.displayName },
      },
      created.accessJwt,
    )
  }
}

// An identity whose PDS is down: registered at the PLC with the handle
// carol.test and a PDS on a port nothing listens on. Only DNS (a test's
// dnsmasq) can name its handle.
const { Secp256k1Keypair } = await import('@atproto/crypto')
const { Client: PlcClient } = await import('@did-plc/lib')
const carolKey = await Secp256k1Keypair.create()
const carolDid = await new PlcClient(plcUrl).createDid({
  signingKey: carolKey.did(),
  handle: 'carol.test',
  pds: 'http://127.0.0.1:1',
  rotationKeys: [carolKey.did()],
  signer: carolKey,
})

const state = {
  plc_url: plcUrl,
  pds_url: pdsUrl,
  unreachable: { handle: 'carol.test', did: carolDid },
  accounts: accounts.map(({ handle, did, password, displayName }) => ({
    handle,
    did,
    password,
    display_name: displayName,
  })),
}
fs.writeFileSync(path.join(runDir, 'state.json.tmp'), JSON.stringify(state, null, 2))
fs.renameSync(path.join(runDir, 'state.json.tmp'), path.join(runDir, 'state.json'))
console.log(`ready in ${Date.now() - started} ms: PLC ${plcUrl}, PDS ${pdsUrl}`)

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await pds.destroy()
  await plc.destroy()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
