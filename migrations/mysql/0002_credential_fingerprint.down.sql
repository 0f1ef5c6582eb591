-- Reverts 0002.
ALTER TABLE oauth2_token DROP COLUMN credential_fingerprint;
ALTER TABLE oauth2_authorization_code DROP COLUMN credential_fingerprint;
