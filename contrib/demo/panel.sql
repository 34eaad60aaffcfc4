-- OpenPanel's panel database (MySQL database `panel`), reduced to the
-- tables and columns ophook reads, in SQL that both SQLite and MariaDB
-- accept.  The demo seeds an SQLite panel DB from it; the integration tests
-- load it into a real MariaDB server too.  The users and domains match the
-- demo tree (contrib/demo/tree: alice-blog.example; the scenario adds
-- shop.example, whose row OpenPanel inserts before it writes the files).
--   sqlite3 panel.db < contrib/demo/panel.sql
--   mariadb --defaults-file=/etc/openpanel/mysql/host_my.cnf panel < contrib/demo/panel.sql
-- Column shapes follow OpenPanel's mysql/initialize/1.1/plans.sql (and
-- sites.container, which a 1.5.5 update added).

CREATE TABLE plans (
  id INTEGER NOT NULL PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  description TEXT,
  domains_limit INTEGER NOT NULL,
  websites_limit INTEGER NOT NULL,
  email_limit INTEGER NOT NULL DEFAULT 0,
  ftp_limit INTEGER NOT NULL DEFAULT 0,
  disk_limit TEXT NOT NULL,
  inodes_limit BIGINT NOT NULL,
  db_limit INTEGER NOT NULL,
  cpu VARCHAR(50) DEFAULT NULL,
  ram VARCHAR(50) DEFAULT NULL,
  bandwidth INTEGER DEFAULT NULL
);

CREATE TABLE users (
  id INTEGER NOT NULL PRIMARY KEY,
  username VARCHAR(255) NOT NULL,
  password VARCHAR(255) NOT NULL,
  email VARCHAR(255) NOT NULL,
  owner VARCHAR(255) DEFAULT NULL,
  user_domains INTEGER NOT NULL DEFAULT 0,
  twofa_enabled TINYINT DEFAULT 0,
  otp_secret VARCHAR(255) DEFAULT NULL,
  plan VARCHAR(255) DEFAULT NULL,
  registered_date TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP,
  server VARCHAR(255) DEFAULT 'default',
  plan_id INTEGER DEFAULT NULL
);
CREATE INDEX users_plan_id ON users (plan_id);

CREATE TABLE domains (
  domain_id INTEGER NOT NULL PRIMARY KEY,
  docroot VARCHAR(255) NOT NULL,
  domain_url VARCHAR(255) NOT NULL,
  user_id INTEGER DEFAULT NULL,
  php_version VARCHAR(255) DEFAULT '8.2'
);
CREATE INDEX domains_user_id ON domains (user_id);

CREATE TABLE sites (
  id INTEGER NOT NULL PRIMARY KEY,
  site_name VARCHAR(255) DEFAULT NULL,
  domain_id INTEGER DEFAULT NULL,
  admin_email VARCHAR(255) DEFAULT NULL,
  version VARCHAR(20) DEFAULT NULL,
  created_date TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP,
  type VARCHAR(50) DEFAULT NULL,
  ports INTEGER DEFAULT NULL,
  path VARCHAR(255) DEFAULT NULL,
  container VARCHAR(255) DEFAULT NULL
);

INSERT INTO plans (id, name, description, domains_limit, websites_limit,
  email_limit, ftp_limit, disk_limit, inodes_limit, db_limit, cpu, ram,
  bandwidth) VALUES
  (1, 'Standard plan', 'Small plan for testing', 0, 10, 0, 0, '5 GB',
   1000000, 0, '2', '2g', 10),
  (2, 'Developer Plus', '4 cores, 6G ram', 0, 10, 0, 0, '10 GB', 1000000,
   0, '4', '6g', 100);

-- Passwords are placeholders shaped like bcrypt hashes (ophook never reads them).
INSERT INTO users (id, username, password, email, owner, user_domains,
  plan, server, plan_id) VALUES
  (1, 'alice', '$2b$12$2y1mqC4pV0pKZ3nK6f5r3eS9vJ2tq0W2mHq8xk1s5Jd0Yy7c4n9a2',
   'alice@example.net', 'root', 2, 'Standard plan', 'alice', 1),
  (2, 'bob', '$2b$12$2y1mqC4pV0pKZ3nK6f5r3eS9vJ2tq0W2mHq8xk1s5Jd0Yy7c4n9a2',
   'bob@example.net', 'root', 1, 'Developer Plus', 'bob', 2),
  (3, 'carol', '$2b$12$2y1mqC4pV0pKZ3nK6f5r3eS9vJ2tq0W2mHq8xk1s5Jd0Yy7c4n9a2',
   'carol@example.net', 'root', 0, 'Standard plan', 'carol', 1);

INSERT INTO domains (domain_id, docroot, domain_url, user_id, php_version)
  VALUES
  (1, '/var/www/html/alice-blog.example', 'alice-blog.example', 1, '8.2'),
  (2, '/var/www/html/shop.example', 'shop.example', 1,
   '8.3'),
  (3, '/var/www/html/bob-site.example', 'bob-site.example', 2, '8.2');

INSERT INTO sites (id, site_name, domain_id, admin_email, version, type,
  ports, path) VALUES
  (1, 'alice-blog.example', 1, 'alice@example.net', '6.5', 'wordpress', NULL,
   '/var/www/html/alice-blog.example');
