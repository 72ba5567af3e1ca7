-- One PostgreSQL for the compose stack, one database and role per service.
-- The postgres image runs this once, when it starts on an empty volume
-- (docker compose down -v to start over). Demo passwords: local use only.
CREATE ROLE kratos LOGIN PASSWORD 'kratos-demo-password';
CREATE DATABASE kratos OWNER kratos;

CREATE ROLE vigil LOGIN PASSWORD 'vigil-demo-password';
CREATE DATABASE vigil OWNER vigil;
