#!/usr/bin/env bash
# Give the test suite a Docker Compose client to validate docker-compose.yml with
# (`docker compose config`). No Docker engine is needed for that. Installs Debian's
# docker-compose when running as root with apt-get and no client is present; otherwise says
# so, and the compose test skips with that reason. Never fails the build by itself.
set -u
if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's docker-compose to validate docker-compose.yml" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 \
      || echo "could not install docker-compose; the compose test will skip" >&2
  fi
else
  echo "no docker compose client; the compose test will skip" >&2
fi
exit 0
