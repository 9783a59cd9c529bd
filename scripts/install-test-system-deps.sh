#!/usr/bin/env sh
# System packages the browser and PostgreSQL tests use (Debian): Chromium for the
# Dagster UI test, PostgreSQL for the PostgreSQL-backed instance test. Installs
# only what is missing; needs root (or sudo) where something is missing.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
