-- Reverts 0004.
DROP INDEX authentication_logs_time;
DROP INDEX authentication_logs_ip_regulation;
DROP INDEX authentication_logs_user_regulation;
