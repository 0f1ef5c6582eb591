-- Latchkey schema 1. The migrator runs this file inside one transaction and records it in
-- `migrations`. Conventions: times are Unix seconds (INTEGER); lists are JSON text; booleans are
-- INTEGER 0/1; codes, tokens and session ids are stored only as SHA-256 hex (security.md C5), so a
-- dump holds nothing a client could present.

-- The migrator also creates this before reading it (it must exist to know what to apply); kept here
-- so this file describes the whole schema. Never dropped by a down migration.
CREATE TABLE IF NOT EXISTS migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at INTEGER NOT NULL
);

-- A known constant sealed with storage.encryption_key, to refuse a wrong key at start-up instead of
-- failing later on the first TOTP sign-in.
CREATE TABLE encryption (
  name TEXT PRIMARY KEY,
  value BLOB NOT NULL
);

CREATE TABLE user_opaque_identifier (
  id INTEGER PRIMARY KEY,
  sector_id TEXT NOT NULL,
  username TEXT NOT NULL,
  subject TEXT NOT NULL UNIQUE,
  UNIQUE (sector_id, username)
);

-- secret = nonce | AES-256-GCM ciphertext | tag, with the username as associated data.
CREATE TABLE totp_configurations (
  username TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
  digits INTEGER NOT NULL CHECK (digits IN (6, 8)),
  period INTEGER NOT NULL CHECK (period > 0),
  secret BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
);

-- Accepted TOTP steps (RFC 6238 §5.2). Only the newest per user is kept: it alone decides.
CREATE TABLE totp_history (
  username TEXT NOT NULL,
  step INTEGER NOT NULL,
  used_at INTEGER NOT NULL,
  PRIMARY KEY (username, step)
) WITHOUT ROWID;

CREATE TABLE authentication_logs (
  id INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  successful INTEGER NOT NULL,
  banned INTEGER NOT NULL DEFAULT 0,
  username TEXT NOT NULL,
  auth_type TEXT NOT NULL,
  remote_ip TEXT NOT NULL,
  request_uri TEXT,
  request_method TEXT
);
CREATE INDEX authentication_logs_username_time ON authentication_logs (username, time);

CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE identity_verification (
  jti TEXT PRIMARY KEY,
  username TEXT NOT NULL,
  action TEXT NOT NULL,
  issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  consumed_at INTEGER,
  remote_ip TEXT NOT NULL
);
CREATE INDEX identity_verification_expires_at ON identity_verification (expires_at);

CREATE TABLE oauth2_consent_session (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  username TEXT NOT NULL,
  session_id TEXT NOT NULL,
  requested_scopes TEXT NOT NULL,
  requested_audience TEXT NOT NULL,
  form TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  responded_at INTEGER,
  granted INTEGER,
  granted_scopes TEXT,
  granted_audience TEXT,
  used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth2_consent_session_expires_at ON oauth2_consent_session (expires_at);

-- scopes and audience are sorted, de-duplicated JSON arrays so an exact-set match is an equality.
CREATE TABLE oauth2_consent_preconfiguration (
  id INTEGER PRIMARY KEY,
  subject TEXT NOT NULL,
  client_id TEXT NOT NULL,
  scopes TEXT NOT NULL,
  audience TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  UNIQUE (subject, client_id, scopes, audience)
);
CREATE INDEX oauth2_consent_preconfiguration_expires_at ON oauth2_consent_preconfiguration (expires_at);

CREATE TABLE oauth2_authorization_code (
  code_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  username TEXT NOT NULL,
  subject TEXT NOT NULL,
  scopes TEXT NOT NULL,
  audience TEXT NOT NULL,
  auth_time INTEGER NOT NULL,
  amr TEXT NOT NULL,
  nonce TEXT,
  requested_at INTEGER NOT NULL,
  session_id TEXT,
  redirect_uri TEXT NOT NULL,
  redirect_uri_sent INTEGER NOT NULL,
  code_challenge TEXT,
  code_challenge_method TEXT CHECK (code_challenge_method IN ('S256', 'plain')),
  issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  consumed INTEGER NOT NULL DEFAULT 0,
  consumed_at INTEGER,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth2_authorization_code_grant_id ON oauth2_authorization_code (grant_id);
CREATE INDEX oauth2_authorization_code_expires_at ON oauth2_authorization_code (expires_at);

CREATE TABLE oauth2_token (
  token_hash TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
  grant_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  username TEXT NOT NULL,
  subject TEXT NOT NULL,
  scopes TEXT NOT NULL,
  audience TEXT NOT NULL,
  auth_time INTEGER NOT NULL,
  amr TEXT NOT NULL,
  nonce TEXT,
  requested_at INTEGER NOT NULL,
  session_id TEXT,
  issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  consumed INTEGER NOT NULL DEFAULT 0,
  consumed_at INTEGER,
  revoked INTEGER NOT NULL DEFAULT 0,
  parent_hash TEXT
);
CREATE INDEX oauth2_token_grant_id ON oauth2_token (grant_id);
CREATE INDEX oauth2_token_expires_at ON oauth2_token (expires_at);
