-- security.md W6, V1: identity verification by a one-time code typed into the tab that asked for it.
-- Each verification is bound to the session that started it (a hash of the session id, never the
-- id itself), carries the hash of its code, and counts wrong codes. Rows outlive their expiry for
-- the rate-limit window (housekeeping keeps them an hour), so the limits hold across restarts and
-- instances (security.md H1).
ALTER TABLE identity_verification
  ADD COLUMN session_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  ADD COLUMN code_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  ADD COLUMN failed_attempts INT NOT NULL DEFAULT 0,
  ADD KEY identity_verification_username_issued (username, issued_at),
  ADD KEY identity_verification_session_issued (session_hash, issued_at);

-- A TOTP device between its registration and the first code confirmed from it: it signs nobody in
-- and replaces nothing until then. One per user; secret sealed like totp_configurations.secret.
CREATE TABLE totp_pending_configurations (
  username VARCHAR(255) NOT NULL PRIMARY KEY,
  id VARCHAR(255) NOT NULL,
  session_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  issuer VARCHAR(255) NOT NULL,
  algorithm VARCHAR(6) NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
  digits INT NOT NULL CHECK (digits IN (6, 8)),
  period INT NOT NULL CHECK (period > 0),
  secret BLOB NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  KEY totp_pending_configurations_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
