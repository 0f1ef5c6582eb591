-- Reverts 0005.
DROP TABLE oauth2_pushed_authorization_request;
DROP TABLE oauth2_client_assertion_jti;
