-- OIDC Back- and Front-Channel Logout 1.0: which clients hold a sign-in of which Latchkey session.
-- `issuer` is the one the client's ID token named (logout tokens carry it). `sid` is the session's logout id (the `sid` claim of its ID tokens), never the session cookie.
-- One row per (session, client), written when an authorization for a client with a logout URI
-- succeeds; taken (deleted and returned in one step) when the session signs out, so each client is
-- notified once however many instances sign the session out; swept by housekeeping after expiry.
CREATE TABLE oidc_session_clients (
  sid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  client_id VARCHAR(255) NOT NULL,
  username VARCHAR(255) NOT NULL,
  subject VARCHAR(255) NOT NULL,
  issuer VARCHAR(1024) NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (sid, client_id),
  KEY oidc_session_clients_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
