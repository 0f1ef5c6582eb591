-- docs/security.md B1, B6, Authelia 4.39 `regulation.modes`: the regulator reads the failures of one
-- user or of one client address that were not refused by a ban; the write budget counts refused
-- attempts per address; pruning deletes by age.
CREATE INDEX authentication_logs_user_regulation ON authentication_logs (username, banned, time);
CREATE INDEX authentication_logs_ip_regulation ON authentication_logs (remote_ip, banned, time);
CREATE INDEX authentication_logs_time ON authentication_logs (time);
