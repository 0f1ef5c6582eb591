-- security.md T3: a refresh token stops working when its user's password changes. Each code and
-- token remembers a fingerprint of the password digest the user had when the grant was made.
ALTER TABLE oauth2_authorization_code ADD COLUMN credential_fingerprint VARCHAR(255) NULL;
ALTER TABLE oauth2_token ADD COLUMN credential_fingerprint VARCHAR(255) NULL;
