-- Reverts 0001. `migrations` stays: the migrator records the rollback in it.
DROP TABLE IF EXISTS oauth2_token;
DROP TABLE IF EXISTS oauth2_authorization_code;
DROP TABLE IF EXISTS oauth2_consent_preconfiguration;
DROP TABLE IF EXISTS oauth2_consent_session;
DROP TABLE IF EXISTS identity_verification;
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS authentication_logs;
DROP TABLE IF EXISTS totp_history;
DROP TABLE IF EXISTS totp_configurations;
DROP TABLE IF EXISTS user_opaque_identifier;
DROP TABLE IF EXISTS encryption;
