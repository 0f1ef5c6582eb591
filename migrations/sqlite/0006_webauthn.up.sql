-- WebAuthn (issue 11): security keys and passkeys, several per user, each with a description that
-- is unique for its user. The public key is not a secret, so it is stored as is. sign_count moves
-- forward only (a guarded UPDATE); clone_warning is set once a count goes back (security.md N3).
CREATE TABLE webauthn_credentials (
  credential_id TEXT PRIMARY KEY,
  username TEXT NOT NULL,
  description TEXT NOT NULL,
  rp_id TEXT NOT NULL,
  public_key BLOB NOT NULL,
  sign_count INTEGER NOT NULL DEFAULT 0,
  transports TEXT NOT NULL DEFAULT '',
  aaguid TEXT NOT NULL,
  attestation_type TEXT NOT NULL,
  discoverable INTEGER NOT NULL DEFAULT 0,
  user_verified INTEGER NOT NULL DEFAULT 0,
  backup_eligible INTEGER NOT NULL DEFAULT 0,
  clone_warning INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  UNIQUE (username, description)
);

-- A ceremony's challenge, spent by one DELETE (security.md N2): only its SHA-256 is kept, with the
-- session that asked for it (none for a passkey sign-in) and what it is for.
CREATE TABLE webauthn_challenges (
  challenge_hash TEXT PRIMARY KEY,
  purpose TEXT NOT NULL,
  session_hash TEXT,
  username TEXT,
  expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_challenges_expires_at ON webauthn_challenges (expires_at);

-- The second factor a user chose (Authelia's user_preferences.second_factor_method).
CREATE TABLE user_preferences (
  username TEXT PRIMARY KEY,
  second_factor_method TEXT NOT NULL
);
