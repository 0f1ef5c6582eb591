-- Latchkey schema 1, the PostgreSQL twin of migrations/sqlite/0001_initial.up.sql: same tables,
-- same meaning. Times are Unix seconds (BIGINT, like SQLite's INTEGER); lists are JSON text;
-- booleans are SMALLINT 0/1; codes, tokens and session ids are stored only as SHA-256 hex
-- (security.md C5). The migrator runs this inside one transaction under an advisory lock.

CREATE TABLE IF NOT EXISTS migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
);

CREATE TABLE encryption (
  name TEXT PRIMARY KEY,
  value BYTEA NOT NULL
);

CREATE TABLE user_opaque_identifier (
  id BIGSERIAL PRIMARY KEY,
  sector_id TEXT NOT NULL,
  username TEXT NOT NULL,
  subject TEXT NOT NULL UNIQUE,
  UNIQUE (sector_id, username)
);

CREATE TABLE totp_configurations (
  username TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
  digits INTEGER NOT NULL CHECK (digits IN (6, 8)),
  period INTEGER NOT NULL CHECK (period > 0),
  secret BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT
);

-- The newest accepted TOTP step per user (RFC 6238 §5.2). One row per user, so the guard is one
-- row lock: `ON CONFLICT (username) DO UPDATE … WHERE step < new step` re-checks the latest row
-- version under READ COMMITTED, and two different steps in parallel cannot both pass a stale read.
CREATE TABLE totp_history (
  username TEXT PRIMARY KEY,
  step BIGINT NOT NULL,
  used_at BIGINT NOT NULL
);

CREATE TABLE authentication_logs (
  id BIGSERIAL PRIMARY KEY,
  time BIGINT NOT NULL,
  successful SMALLINT NOT NULL,
  banned SMALLINT NOT NULL DEFAULT 0,
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
  expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE identity_verification (
  jti TEXT PRIMARY KEY,
  username TEXT NOT NULL,
  action TEXT NOT NULL,
  issued_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  consumed_at BIGINT,
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
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  responded_at BIGINT,
  granted SMALLINT,
  granted_scopes TEXT,
  granted_audience TEXT,
  used SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX oauth2_consent_session_expires_at ON oauth2_consent_session (expires_at);

CREATE TABLE oauth2_consent_preconfiguration (
  id BIGSERIAL PRIMARY KEY,
  subject TEXT NOT NULL,
  client_id TEXT NOT NULL,
  scopes TEXT NOT NULL,
  audience TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
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
  auth_time BIGINT NOT NULL,
  amr TEXT NOT NULL,
  nonce TEXT,
  requested_at BIGINT NOT NULL,
  session_id TEXT,
  redirect_uri TEXT NOT NULL,
  redirect_uri_sent SMALLINT NOT NULL,
  code_challenge TEXT,
  code_challenge_method TEXT CHECK (code_challenge_method IN ('S256', 'plain')),
  issued_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  consumed SMALLINT NOT NULL DEFAULT 0,
  consumed_at BIGINT,
  revoked SMALLINT NOT NULL DEFAULT 0
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
  auth_time BIGINT NOT NULL,
  amr TEXT NOT NULL,
  nonce TEXT,
  requested_at BIGINT NOT NULL,
  session_id TEXT,
  issued_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  consumed SMALLINT NOT NULL DEFAULT 0,
  consumed_at BIGINT,
  revoked SMALLINT NOT NULL DEFAULT 0,
  parent_hash TEXT
);
CREATE INDEX oauth2_token_grant_id ON oauth2_token (grant_id);
CREATE INDEX oauth2_token_expires_at ON oauth2_token (expires_at);
