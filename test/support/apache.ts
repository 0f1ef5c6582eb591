import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestPki } from './tls.js'

/**
 * Apache httpd with mod_auth_openidc (Debian's `apache2` and `libapache2-mod-auth-openidc`) as a
 * relying party nobody here wrote, standing in for Kasm at https://kasm.example.com:PORT. Its own
 * ServerRoot, config and logs live in a temporary folder; nothing under /etc/apache2 is read.
 */
export const APACHE_BINARY = '/usr/sbin/apache2'
export const APACHE_MODULES = '/usr/lib/apache2/modules'

export function apacheAvailable(): boolean {
  return existsSync(APACHE_BINARY) && existsSync(join(APACHE_MODULES, 'mod_auth_openidc.so'))
}

export interface ApacheOptions {
  pki: TestPki
  /** Loopback port Apache listens on (TLS); chosen before Latchkey starts so the redirect URI is known. */
  port: number
  /** Latchkey's issuer, e.g. https://auth.example.com:4431 (discovery is read from it). */
  issuer: string
  /** CONNECT proxy mapping *.example.com to loopback for mod_auth_openidc's back-channel (libcurl). */
  proxyPort: number
  clientId: string
  clientSecret: string
  tokenEndpointAuth: 'client_secret_basic' | 'client_secret_post'
}

export interface ApacheRp {
  /** https://kasm.example.com:PORT */
  url: string
  redirectUri: string
  dir: string
  errorLog(): string
  stop(): Promise<void>
}

/** The claims page: a CGI script printing what mod_auth_openidc handed over (OIDC_CLAIM_*). */
const CLAIMS_CGI = `#!/bin/sh
printf 'Content-Type: text/html; charset=utf-8\\r\\n\\r\\n'
printf '<!doctype html><html><head><title>Kasm stand-in: claims</title></head><body>\\n'
printf '<h1>Signed in to the Kasm stand-in (Apache + mod_auth_openidc)</h1>\\n'
printf '<p>REMOTE_USER=<b id="remote-user">%s</b></p>\\n' "$REMOTE_USER"
printf '<p>preferred_username=<b id="preferred-username">%s</b></p>\\n' "$OIDC_CLAIM_preferred_username"
printf '<p>groups=<b id="groups">%s</b></p>\\n' "$OIDC_CLAIM_groups"
printf '<pre id="claims">\\n'
env | grep '^OIDC_CLAIM_' | sort | sed -e 's/&/\\&amp;/g' -e 's/</\\&lt;/g'
printf '</pre></body></html>\\n'
`

/** Where mod_auth_openidc's logout (`OIDCRedirectURI?logout=…`) returns: a page without sign-in. */
const LOGGED_OUT_CGI = `#!/bin/sh
printf 'Content-Type: text/html; charset=utf-8\\r\\n\\r\\n'
printf '<!doctype html><html><head><title>Kasm stand-in: signed out</title></head><body><h1 id="signed-out">Signed out of the Kasm stand-in</h1></body></html>\\n'
`

function httpdConf(o: ApacheOptions, dir: string, runAsRoot: boolean): string {
  const m = (name: string, file: string) => `LoadModule ${name} ${join(APACHE_MODULES, file)}`
  return [
    `ServerRoot "${dir}"`,
    `ServerName kasm.example.com`,
    `Listen 127.0.0.1:${o.port}`,
    `PidFile "${join(dir, 'httpd.pid')}"`,
    `DefaultRuntimeDir "${dir}"`,
    `Mutex file:${dir} default`,
    `ErrorLog "${join(dir, 'error.log')}"`,
    `LogLevel warn auth_openidc:info`,
    // Running as root (CI): children drop to www-data, which the Debian package creates.
    runAsRoot ? 'User www-data\nGroup www-data' : '',
    m('mpm_prefork_module', 'mod_mpm_prefork.so'),
    'StartServers 1\nMinSpareServers 1\nMaxSpareServers 2\nMaxRequestWorkers 8',
    m('authz_core_module', 'mod_authz_core.so'),
    m('authn_core_module', 'mod_authn_core.so'),
    m('authz_user_module', 'mod_authz_user.so'),
    m('alias_module', 'mod_alias.so'),
    m('cgi_module', 'mod_cgi.so'),
    m('socache_shmcb_module', 'mod_socache_shmcb.so'),
    m('ssl_module', 'mod_ssl.so'),
    m('auth_openidc_module', 'mod_auth_openidc.so'),
    '',
    'SSLEngine on',
    `SSLCertificateFile "${o.pki.certFile}"`,
    `SSLCertificateKeyFile "${o.pki.keyFile}"`,
    `SSLSessionCache "shmcb:${join(dir, 'ssl_scache')}(512000)"`,
    '',
    `OIDCProviderMetadataURL ${o.issuer}/.well-known/openid-configuration`,
    `OIDCClientID ${o.clientId}`,
    `OIDCClientSecret ${o.clientSecret}`,
    `OIDCRedirectURI https://kasm.example.com:${o.port}/api/oidc_callback`,
    `OIDCCryptoPassphrase ${randomBytes(24).toString('hex')}`,
    'OIDCScope "openid profile groups email"',
    'OIDCRemoteUserClaim preferred_username',
    `OIDCProviderTokenEndpointAuth ${o.tokenEndpointAuth}`,
    // Verify Latchkey's certificate against the test CA only, as Kasm must trust the IdP's CA.
    'OIDCSSLValidateServer On',
    `OIDCCABundlePath "${o.pki.caFile}"`,
    // libcurl takes no custom resolver here: its back-channel goes through the loopback CONNECT
    // proxy, which maps *.example.com to 127.0.0.1 (the TLS session is still end to end).
    `OIDCOutgoingProxy 127.0.0.1:${o.proxyPort}`,
    'OIDCPassClaimsAs environment',
    '',
    `ScriptAlias /claims "${join(dir, 'claims.cgi')}"`,
    '<Location />',
    '  AuthType openid-connect',
    '  Require valid-user',
    '</Location>',
    // The post-logout page: reachable without a session (later sections win).
    `ScriptAlias /loggedout "${join(dir, 'loggedout.cgi')}"`,
    '<Location /loggedout>',
    '  AuthType None',
    '  Require all granted',
    '</Location>',
    '',
  ].join('\n')
}

function waitForPort(port: number, child: ChildProcess, errorLog: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`apache2 exited with ${child.exitCode}:\n${errorLog()}`))
      const s = connect({ host: '127.0.0.1', port })
      s.once('connect', () => {
        s.destroy()
        resolve()
      })
      s.once('error', () => {
        s.destroy()
        if (Date.now() > deadline) return reject(new Error(`apache2 did not listen on ${port}:\n${errorLog()}`))
        setTimeout(attempt, 50)
      })
    }
    attempt()
  })
}

/** Starts Apache in the foreground (so the test owns the process) and waits until it listens. */
export async function startApache(o: ApacheOptions): Promise<ApacheRp> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-apache-'))
  const runAsRoot = process.getuid?.() === 0
  // www-data must reach the CGI script; the folder holds no secret the test cares about.
  chmodSync(dir, 0o755)
  const cgi = join(dir, 'claims.cgi')
  writeFileSync(cgi, CLAIMS_CGI, { mode: 0o755 })
  writeFileSync(join(dir, 'loggedout.cgi'), LOGGED_OUT_CGI, { mode: 0o755 })
  const conf = join(dir, 'httpd.conf')
  writeFileSync(conf, httpdConf(o, dir, runAsRoot))
  const errorLogPath = join(dir, 'error.log')
  const errorLog = () => (existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : '')

  let stderr = ''
  // detached: its own process group, because prefork's shutdown signals the whole group (it would
  // otherwise send SIGTERM to the test runner too).
  const child = spawn(APACHE_BINARY, ['-d', dir, '-f', conf, '-DFOREGROUND'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  try {
    await waitForPort(o.port, child, () => stderr + errorLog())
  } catch (err) {
    child.kill('SIGKILL')
    process.off('exit', killOnExit)
    throw err
  }

  let stopped = false
  return {
    url: `https://kasm.example.com:${o.port}`,
    redirectUri: `https://kasm.example.com:${o.port}/api/oidc_callback`,
    dir,
    errorLog,
    async stop() {
      if (stopped) return
      stopped = true
      process.off('exit', killOnExit)
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
        // SIGTERM: the parent stops its children and removes the pid file.
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
