#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for taskito's tests and benchmarks.
#
#   scripts/pg-cluster.sh start   # create (first time) and start; prints `export TASKITO_PG_URL=...`
#   scripts/pg-cluster.sh start --ssl
#                                 # the same with TLS on: a throw-away CA and a server certificate
#                                 # for `localhost` (made with the openssl CLI); also prints
#                                 # `export TASKITO_PG_SSLROOTCERT=<the CA's PEM file>`
#   scripts/pg-cluster.sh url     # prints the URL only
#   scripts/pg-cluster.sh stop    # stops the server and removes its folder
#   scripts/pg-cluster.sh down    # stops the server, keeps its folder (`start` brings it back with
#                                 # its data: an outage, for the tests and the chaos run)
#   scripts/pg-cluster.sh check   # exit status 0 when the PostgreSQL server binaries are installed
#
#   eval "$(scripts/pg-cluster.sh start)" && cargo test -p taskito-core
#
# Installs nothing: it needs the Debian `postgresql` package (`apt-get install -y postgresql`).
# The cluster lives in one folder under $TMPDIR (named after the port, so start/stop/url find it
# without state files), listens on 127.0.0.1 only, on an unusual port (TASKITO_PG_PORT, default
# 54329) so it never collides with a system server, and trusts loopback connections: it is meant
# for a test machine, never for data that matters. PostgreSQL refuses to run as root, so as root
# the server runs as the `postgres` system user.
set -euo pipefail

PORT="${TASKITO_PG_PORT:-54329}"
BASE="${TMPDIR:-/tmp}/taskito-pg-${PORT}"
DATA="${BASE}/data"
URL="postgres://postgres@127.0.0.1:${PORT}/taskito"
TLS="${BASE}/tls"
SSL=0

die() { echo "pg-cluster: $*" >&2; exit 1; }
log() { echo "pg-cluster: $*" >&2; }

bindir() {
  local d
  # Newest installed major version first.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  return 1
}

# Runs a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [ "$(id -u)" = "0" ]; then
    id postgres >/dev/null 2>&1 || die "running as root and there is no 'postgres' user to own the cluster"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() {
  [ -f "${DATA}/PG_VERSION" ] && as_owner "${BIN}/pg_ctl" -D "${DATA}" status >/dev/null 2>&1
}

psql_admin() {
  as_owner "${BIN}/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORT}" -U postgres -d postgres "$@"
}

# A CA and a server certificate signed by it, valid for the name `localhost` only (so a test can
# reach the same server by a name that does not match: 127.0.0.1). EC P-256 keys: quick to make.
make_certs() {
  command -v openssl >/dev/null 2>&1 || die "openssl not found; install it: apt-get install -y openssl"
  as_owner mkdir -p "${TLS}"
  as_owner openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "${TLS}/ca.key" -out "${TLS}/ca.pem" -days 3650 -subj "/CN=taskito test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    >"${BASE}/openssl.log" 2>&1 || { cat "${BASE}/openssl.log" >&2; die "openssl: CA failed"; }
  as_owner openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "${TLS}/server.key" -out "${TLS}/server.csr" -subj "/CN=localhost" \
    >"${BASE}/openssl.log" 2>&1 || { cat "${BASE}/openssl.log" >&2; die "openssl: request failed"; }
  as_owner tee "${TLS}/server.ext" >/dev/null <<EOF
subjectAltName = DNS:localhost
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
EOF
  as_owner openssl x509 -req -in "${TLS}/server.csr" -CA "${TLS}/ca.pem" -CAkey "${TLS}/ca.key" \
    -CAcreateserial -out "${TLS}/server.crt" -days 3650 -extfile "${TLS}/server.ext" \
    >"${BASE}/openssl.log" 2>&1 || { cat "${BASE}/openssl.log" >&2; die "openssl: signing failed"; }
  # PostgreSQL refuses a key file that others can read.
  as_owner chmod 600 "${TLS}/server.key" "${TLS}/ca.key"
}

start() {
  BIN="$(bindir)" || die "PostgreSQL server binaries not found; install them: apt-get install -y postgresql"
  if [ "${SSL}" = "1" ] && [ -f "${DATA}/PG_VERSION" ] && [ ! -f "${TLS}/ca.pem" ]; then
    die "the cluster on port ${PORT} exists without TLS: stop it first (TASKITO_PG_PORT=${PORT} $0 stop)"
  fi
  if ! running; then
    if [ ! -f "${DATA}/PG_VERSION" ]; then
      rm -rf "${BASE}"
      mkdir -p "${BASE}"
      if [ "$(id -u)" = "0" ]; then chown postgres: "${BASE}"; fi
      chmod 700 "${BASE}"
      log "initdb in ${DATA}"
      as_owner "${BIN}/initdb" -D "${DATA}" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=trust --no-sync >"${BASE}/initdb.log" 2>&1 \
        || { cat "${BASE}/initdb.log" >&2; die "initdb failed"; }
      # Loopback only; the socket in our own folder (the system's /var/run/postgresql may not be
      # writable or may belong to another server). Enough connections for pools of several
      # worker processes plus the tests' own.
      as_owner tee -a "${DATA}/postgresql.conf" >/dev/null <<EOF

# taskito throw-away test cluster
listen_addresses = '127.0.0.1'
port = ${PORT}
unix_socket_directories = '${BASE}'
max_connections = 300
shared_buffers = 128MB
log_min_messages = warning
EOF
      as_owner tee "${DATA}/pg_hba.conf" >/dev/null <<EOF
local all all              trust
host  all all 127.0.0.1/32 trust
EOF
      if [ "${SSL}" = "1" ]; then
        log "TLS: CA and server certificate in ${TLS}"
        make_certs
        as_owner tee -a "${DATA}/postgresql.conf" >/dev/null <<EOF
ssl = on
ssl_cert_file = '${TLS}/server.crt'
ssl_key_file = '${TLS}/server.key'
EOF
      fi
    fi
    log "starting on 127.0.0.1:${PORT}"
    as_owner "${BIN}/pg_ctl" -D "${DATA}" -l "${BASE}/server.log" -w -t 60 start >/dev/null \
      || { tail -n 30 "${BASE}/server.log" >&2 || true; die "pg_ctl start failed (log: ${BASE}/server.log)"; }
  fi
  if [ "$(psql_admin -tA -c "select count(*) from pg_database where datname = 'taskito'")" != "1" ]; then
    psql_admin -c "create database taskito"
  fi
  echo "export TASKITO_PG_URL=${URL}"
  if [ -f "${TLS}/ca.pem" ]; then echo "export TASKITO_PG_SSLROOTCERT=${TLS}/ca.pem"; fi
}

stop() {
  if BIN="$(bindir)" && running; then
    as_owner "${BIN}/pg_ctl" -D "${DATA}" -w -t 60 -m fast stop >/dev/null
    log "stopped"
  fi
  rm -rf "${BASE}"
}

down() {
  if BIN="$(bindir)" && running; then
    as_owner "${BIN}/pg_ctl" -D "${DATA}" -w -t 60 -m fast stop >/dev/null
    log "down (data kept in ${DATA})"
  fi
}

case "${1:-}" in
  start)
    case "${2:-}" in
      --ssl) SSL=1 ;;
      "") ;;
      *) echo "usage: $0 start [--ssl]" >&2; exit 2 ;;
    esac
    start
    ;;
  stop) stop ;;
  down) down ;;
  url) echo "${URL}" ;;
  check) bindir >/dev/null ;;
  *) echo "usage: $0 start [--ssl]|stop|down|url|check" >&2; exit 2 ;;
esac
