-- Reverts 0007.
DROP TABLE IF EXISTS oidc_session_clients;
