-- WebAuthn (issue 11): security keys and passkeys, several per user, each with a description that
-- is unique for its user. The public key is not a secret, so it is stored as is. sign_count moves
-- forward only (a guarded UPDATE); clone_warning is set once a count goes back (security.md N3).
-- Credential ids are base64url (at most 1023 bytes, 1364 characters): ASCII keeps the key short.
CREATE TABLE webauthn_credentials (
  credential_id VARCHAR(1400) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  username VARCHAR(255) NOT NULL,
  description VARCHAR(64) NOT NULL,
  rp_id VARCHAR(255) NOT NULL,
  public_key BLOB NOT NULL,
  sign_count BIGINT NOT NULL DEFAULT 0,
  transports VARCHAR(255) NOT NULL DEFAULT '',
  aaguid CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  attestation_type VARCHAR(32) NOT NULL,
  discoverable TINYINT NOT NULL DEFAULT 0,
  user_verified TINYINT NOT NULL DEFAULT 0,
  backup_eligible TINYINT NOT NULL DEFAULT 0,
  clone_warning TINYINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT NULL,
  UNIQUE KEY webauthn_credentials_username_description (username, description)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A ceremony's challenge, spent by one DELETE (security.md N2): only its SHA-256 is kept, with the
-- session that asked for it (none for a passkey sign-in) and what it is for.
CREATE TABLE webauthn_challenges (
  challenge_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  purpose VARCHAR(16) NOT NULL,
  session_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  username VARCHAR(255) NULL,
  expires_at BIGINT NOT NULL,
  KEY webauthn_challenges_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The second factor a user chose (Authelia's user_preferences.second_factor_method).
CREATE TABLE user_preferences (
  username VARCHAR(255) NOT NULL PRIMARY KEY,
  second_factor_method VARCHAR(16) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
