-- Reverts 0006.
DROP TABLE IF EXISTS user_preferences;
DROP TABLE IF EXISTS webauthn_challenges;
DROP TABLE IF EXISTS webauthn_credentials;
