-- security.md W6, V1: identity verification by a one-time code typed into the tab that asked for it.
-- Each verification is bound to the session that started it (a hash of the session id, never the
-- id itself), carries the hash of its code, and counts wrong codes. Rows outlive their expiry for
-- the rate-limit window (housekeeping keeps them an hour), so the limits hold across restarts and
-- instances (security.md H1).
ALTER TABLE identity_verification ADD COLUMN session_hash TEXT;
ALTER TABLE identity_verification ADD COLUMN code_hash TEXT;
ALTER TABLE identity_verification ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX identity_verification_username_issued ON identity_verification (username, issued_at);
CREATE INDEX identity_verification_session_issued ON identity_verification (session_hash, issued_at);

-- A TOTP device between its registration and the first code confirmed from it: it signs nobody in
-- and replaces nothing until then. One per user; secret sealed like totp_configurations.secret.
CREATE TABLE totp_pending_configurations (
  username TEXT PRIMARY KEY,
  id TEXT NOT NULL,
  session_hash TEXT NOT NULL,
  issuer TEXT NOT NULL,
  algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
  digits INTEGER NOT NULL CHECK (digits IN (6, 8)),
  period INTEGER NOT NULL CHECK (period > 0),
  secret BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX totp_pending_configurations_expires_at ON totp_pending_configurations (expires_at);
