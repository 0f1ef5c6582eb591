-- RFC 7523 §3 (docs/security.md J3): each client assertion `jti` is accepted once per client, across
-- instances; the row lives until the assertion's `exp`, after which the assertion is refused anyway.
-- The key is the SHA-256 (hex) of the client id and the jti, so any jti length fits.
CREATE TABLE oauth2_client_assertion_jti (
  jti_hash TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX oauth2_client_assertion_jti_expires_at ON oauth2_client_assertion_jti (expires_at);

-- RFC 9126 (docs/security.md Y1): pushed authorization requests, by the SHA-256 (hex) of their
-- request_uri; bound to the client that pushed them, used once (consumed_at), expiring.
CREATE TABLE oauth2_pushed_authorization_request (
  request_hash TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  form TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  consumed_at INTEGER
);
CREATE INDEX oauth2_pushed_authorization_request_expires_at ON oauth2_pushed_authorization_request (expires_at);
