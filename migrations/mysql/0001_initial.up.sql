-- Latchkey schema 1, the MySQL/MariaDB twin of migrations/sqlite/0001_initial.up.sql: same tables,
-- same meaning. InnoDB, utf8mb4 with a binary collation (names compare byte for byte, as in SQLite).
-- Times are Unix seconds (BIGINT); lists are JSON text; booleans are TINYINT 0/1; codes, tokens and
-- session ids are stored only as SHA-256 hex (security.md C5), in ASCII columns. Keys are VARCHAR
-- (InnoDB indexes no TEXT without a prefix). MySQL commits each DDL statement on its own: the
-- migrator runs this under GET_LOCK, so instances starting together apply it once.

CREATE TABLE IF NOT EXISTS migrations (
  version INT NOT NULL PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  applied_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE encryption (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value BLOB NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_opaque_identifier (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  sector_id VARCHAR(255) NOT NULL,
  username VARCHAR(255) NOT NULL,
  subject VARCHAR(255) NOT NULL,
  UNIQUE KEY user_opaque_identifier_subject (subject),
  UNIQUE KEY user_opaque_identifier_sector_user (sector_id, username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE totp_configurations (
  username VARCHAR(255) NOT NULL PRIMARY KEY,
  issuer VARCHAR(255) NOT NULL,
  algorithm VARCHAR(6) NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
  digits INT NOT NULL CHECK (digits IN (6, 8)),
  period INT NOT NULL CHECK (period > 0),
  secret BLOB NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The newest accepted TOTP step per user (RFC 6238 §5.2). One row per user, so the guard is one
-- row lock: `INSERT … ON DUPLICATE KEY UPDATE step = IF(step < new step, …)` reads the latest row
-- version under that lock, and two different steps in parallel cannot both pass a stale read.
CREATE TABLE totp_history (
  username VARCHAR(255) NOT NULL PRIMARY KEY,
  step BIGINT NOT NULL,
  used_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE authentication_logs (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  time BIGINT NOT NULL,
  successful TINYINT NOT NULL,
  banned TINYINT NOT NULL DEFAULT 0,
  username VARCHAR(255) NOT NULL,
  auth_type VARCHAR(16) NOT NULL,
  remote_ip VARCHAR(64) NOT NULL,
  request_uri TEXT NULL,
  request_method VARCHAR(16) NULL,
  KEY authentication_logs_username_time (username, time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
  id_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  data MEDIUMTEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  KEY sessions_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE identity_verification (
  jti VARCHAR(255) NOT NULL PRIMARY KEY,
  username VARCHAR(255) NOT NULL,
  action VARCHAR(64) NOT NULL,
  issued_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  consumed_at BIGINT NULL,
  remote_ip VARCHAR(64) NOT NULL,
  KEY identity_verification_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE oauth2_consent_session (
  id VARCHAR(255) NOT NULL PRIMARY KEY,
  client_id VARCHAR(255) NOT NULL,
  subject VARCHAR(255) NOT NULL,
  username VARCHAR(255) NOT NULL,
  session_id VARCHAR(255) NOT NULL,
  requested_scopes TEXT NOT NULL,
  requested_audience TEXT NOT NULL,
  form MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  responded_at BIGINT NULL,
  granted TINYINT NULL,
  granted_scopes TEXT NULL,
  granted_audience TEXT NULL,
  used TINYINT NOT NULL DEFAULT 0,
  KEY oauth2_consent_session_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- "Exactly these scopes and audience" is unique per (subject, client): the lists are TEXT, so the
-- key holds their SHA-256, computed by the server from the columns themselves.
CREATE TABLE oauth2_consent_preconfiguration (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  subject VARCHAR(255) NOT NULL,
  client_id VARCHAR(255) NOT NULL,
  scopes TEXT NOT NULL,
  audience TEXT NOT NULL,
  lists_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin AS (SHA2(CONCAT(scopes, ' ', audience), 256)) STORED,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  UNIQUE KEY oauth2_consent_preconfiguration_lists (subject, client_id, lists_hash),
  KEY oauth2_consent_preconfiguration_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE oauth2_authorization_code (
  code_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  grant_id VARCHAR(255) NOT NULL,
  client_id VARCHAR(255) NOT NULL,
  username VARCHAR(255) NOT NULL,
  subject VARCHAR(255) NOT NULL,
  scopes TEXT NOT NULL,
  audience TEXT NOT NULL,
  auth_time BIGINT NOT NULL,
  amr TEXT NOT NULL,
  nonce TEXT NULL,
  requested_at BIGINT NOT NULL,
  session_id VARCHAR(255) NULL,
  redirect_uri TEXT NOT NULL,
  redirect_uri_sent TINYINT NOT NULL,
  code_challenge VARCHAR(255) NULL,
  code_challenge_method VARCHAR(8) NULL CHECK (code_challenge_method IN ('S256', 'plain')),
  issued_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  consumed TINYINT NOT NULL DEFAULT 0,
  consumed_at BIGINT NULL,
  revoked TINYINT NOT NULL DEFAULT 0,
  KEY oauth2_authorization_code_grant_id (grant_id),
  KEY oauth2_authorization_code_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE oauth2_token (
  token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  kind VARCHAR(8) NOT NULL CHECK (kind IN ('access', 'refresh')),
  grant_id VARCHAR(255) NOT NULL,
  client_id VARCHAR(255) NOT NULL,
  username VARCHAR(255) NOT NULL,
  subject VARCHAR(255) NOT NULL,
  scopes TEXT NOT NULL,
  audience TEXT NOT NULL,
  auth_time BIGINT NOT NULL,
  amr TEXT NOT NULL,
  nonce TEXT NULL,
  requested_at BIGINT NOT NULL,
  session_id VARCHAR(255) NULL,
  issued_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  consumed TINYINT NOT NULL DEFAULT 0,
  consumed_at BIGINT NULL,
  revoked TINYINT NOT NULL DEFAULT 0,
  parent_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  KEY oauth2_token_grant_id (grant_id),
  KEY oauth2_token_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
