-- Reverts 0003.
DROP TABLE IF EXISTS totp_pending_configurations;
ALTER TABLE identity_verification
  DROP KEY identity_verification_session_issued,
  DROP KEY identity_verification_username_issued,
  DROP COLUMN failed_attempts,
  DROP COLUMN code_hash,
  DROP COLUMN session_hash;
