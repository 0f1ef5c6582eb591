-- OIDC Back- and Front-Channel Logout 1.0: which clients hold a sign-in of which Latchkey session.
-- `issuer` is the one the client's ID token named (logout tokens carry it). `sid` is the session's logout id (the `sid` claim of its ID tokens), never the session cookie.
-- One row per (session, client), written when an authorization for a client with a logout URI
-- succeeds; taken (deleted and returned in one step) when the session signs out, so each client is
-- notified once however many instances sign the session out; swept by housekeeping after expiry.
CREATE TABLE oidc_session_clients (
  sid TEXT NOT NULL,
  client_id TEXT NOT NULL,
  username TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (sid, client_id)
);
CREATE INDEX oidc_session_clients_expires_at ON oidc_session_clients (expires_at);
