#!/usr/bin/env bash
# Install the system packages that the real-part tests need, only when missing.
# Debian packages: postgresql (the scale-out store, tested for real), chromium
# (the phone UI's browser test), fonts-ipafont-gothic (a Japanese font, so screenshots of the
# Japanese pages show text, not boxes) and mosquitto (the connected locks' MQTT broker, with
# mosquitto_passwd) and nodejs/npm (the OpenID provider of the My Page tests, `make test`
# installs its npm package). Safe to run repeatedly.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
test -x /usr/sbin/mosquitto || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
[ -e /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf ] || need+=(fonts-ipafont-gothic)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "sysdeps: missing ${need[*]}; run as root or install them (apt-get install ${need[*]})" >&2
  exit 0
fi
echo "sysdeps: installing ${need[*]} (one time)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
