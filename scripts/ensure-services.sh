#!/usr/bin/env bash
# Makes sure the services the integration tests talk to are up on this machine: PostgreSQL on
# 127.0.0.1:5432 (trust auth for local TCP), NATS with JetStream on 127.0.0.1:4222, Redis on
# 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672 (guest/guest; processor tests).
# Where one is not reachable it installs it from Debian's packages and starts it. Needs root for
# that. Idempotent: a service that answers is left alone.
# Usage: ensure-services.sh [postgres] [nats] [redis] [rabbitmq]
set -euo pipefail

services=("$@")
[ ${#services[@]} -eq 0 ] && services=(postgres nats)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  echo "ensure-services: port $1 did not open" >&2
  return 1
}

apt_updated=0
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-services: $* missing and not root: install it or set TEST_DATABASE_URL / TEST_NATS_URL" >&2
    exit 1
  fi
  [ $apt_updated -eq 1 ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  port_open 5432 && return 0
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port 5432
}

ensure_nats() {
  # The binary is needed even when a server answers: tests start private servers to stop them.
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
  port_open 4222 && return 0
  local bin
  bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec "$bin" -- -a 127.0.0.1 -p 4222 -js \
    -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222
}

ensure_redis() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' >/dev/null
  wait_port 6379
}

ensure_rabbitmq() {
  port_open 5672 && return 0
  [ -x /usr/sbin/rabbitmq-server ] || apt_install rabbitmq-server
  # Debian's init script runs it as the rabbitmq user; without init scripts, start it detached.
  service rabbitmq-server start >/dev/null 2>&1 || su rabbitmq -s /bin/sh -c 'rabbitmq-server -detached' || true
  for _ in $(seq 1 120); do port_open 5672 && return 0; sleep 0.5; done
  echo "ensure-services: RabbitMQ did not open port 5672" >&2
  return 1
}

for service in "${services[@]}"; do
  case "$service" in
    postgres) ensure_postgres ;;
    nats) ensure_nats ;;
    redis) ensure_redis ;;
    rabbitmq) ensure_rabbitmq ;;
    *) echo "ensure-services: unknown service $service" >&2; exit 2 ;;
  esac
done
