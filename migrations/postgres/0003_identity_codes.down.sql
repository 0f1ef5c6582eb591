-- Reverts 0003.
DROP TABLE IF EXISTS totp_pending_configurations;
DROP INDEX IF EXISTS identity_verification_session_issued;
DROP INDEX IF EXISTS identity_verification_username_issued;
ALTER TABLE identity_verification DROP COLUMN failed_attempts;
ALTER TABLE identity_verification DROP COLUMN code_hash;
ALTER TABLE identity_verification DROP COLUMN session_hash;
