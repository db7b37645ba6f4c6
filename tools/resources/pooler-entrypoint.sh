#!/bin/sh
# Entrypoint of the test harness's PgBouncer image (built from Debian's packages by
# alumdb.provision.ensure_pooler_image): a pooler in transaction mode in front of one
# PostgreSQL server, as production deployments put one in front of the database.
# Configured from the environment:
#   POOLER_UPSTREAM_HOST, POOLER_UPSTREAM_PORT (default 5432): the server;
#   POOLER_USER, POOLER_PASSWORD: the one login it accepts (SCRAM) and uses upstream;
#   POOLER_POOL_SIZE (default 3): server sessions per database, shared by all clients.
# It listens on 6432. server_round_robin hands each transaction the server session
# idle longest, so one client's consecutive transactions meet different sessions.
set -eu
: "${POOLER_UPSTREAM_PORT:=5432}"
: "${POOLER_POOL_SIZE:=3}"
umask 077
dir=$(mktemp -d)
printf '"%s" "%s"\n' "$POOLER_USER" "$POOLER_PASSWORD" > "$dir/userlist.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=$POOLER_UPSTREAM_HOST port=$POOLER_UPSTREAM_PORT
[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $POOLER_POOL_SIZE
min_pool_size = $POOLER_POOL_SIZE
server_round_robin = 1
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
INI
exec pgbouncer "$dir/pgbouncer.ini"
