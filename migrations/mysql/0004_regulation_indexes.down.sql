-- Reverts 0004.
ALTER TABLE authentication_logs
  DROP KEY authentication_logs_time,
  DROP KEY authentication_logs_ip_regulation,
  DROP KEY authentication_logs_user_regulation;
