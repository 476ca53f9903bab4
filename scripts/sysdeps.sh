#!/usr/bin/env bash
# Install the Debian packages the test suite drives (real clients, never mocks),
# non-interactively, only when a command is missing. Needs root and apt-get.
set -euo pipefail
declare -A want=( [ssh]=openssh-client [sshpass]=sshpass [swaks]=swaks [ip]=iproute2 )
# swaks needs Net::SSLeay for STARTTLS
perl -MNet::SSLeay -e1 2>/dev/null || want[__ssleay]=libnet-ssleay-perl
missing=()
for cmd in "${!want[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "sysdeps: missing ${missing[*]} (install them; some tests will be skipped)" >&2
    exit 0
fi
echo "sysdeps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
