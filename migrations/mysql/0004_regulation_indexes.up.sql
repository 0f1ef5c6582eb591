-- docs/security.md B1, B6, Authelia 4.39 `regulation.modes`: the regulator reads the failures of one
-- user or of one client address that were not refused by a ban; the write budget counts refused
-- attempts per address; pruning deletes by age. One ALTER: MySQL commits each DDL statement by
-- itself, so the three keys arrive (or fail) together.
ALTER TABLE authentication_logs
  ADD KEY authentication_logs_user_regulation (username, banned, time),
  ADD KEY authentication_logs_ip_regulation (remote_ip, banned, time),
  ADD KEY authentication_logs_time (time);
