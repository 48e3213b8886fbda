#!/usr/bin/env bash
# The test command (README): formatting and lints, unit and integration tests
# on the `ci` profile (release optimisation with overflow checks and debug
# assertions in Jicha's crates; the binary the integration and acceptance
# tests run comes from the same build), the Arroyo UDF crate check, and the
# sample acceptance run.
# Tests that need Mosquitto, Redis, Prometheus, Alertmanager or Chromium
# start their own on free ports; this script only makes sure the programs
# are installed (Debian packages, with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The monitoring-centre tests (#14): dashboards on a live Prometheus, alert
# rules with promtool, pushes through a real Alertmanager, the wallboard in
# headless Chromium driven over WebDriver.
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# Chinese glyphs for the wallboard's screenshots.
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (Debian packages the integration tests run)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"; }; then
    echo "error: could not install ${need_apt[*]} with apt-get; install these Debian packages and run again" >&2
    exit 1
  fi
fi
export PATH="$PATH:/usr/sbin"

for tool in cargo-clippy rustfmt; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is missing; install it with 'rustup component add clippy rustfmt' and run again" >&2
    exit 1
  fi
done

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --profile ci --workspace --all-targets --locked -- -D warnings

echo "== cargo test (profile ci: the binary and the tests share one build)"
cargo test --profile ci --workspace --locked

echo "== arroyo-udfs: cargo check (own lockfile, outside the workspace)"
(cd arroyo-udfs && cargo check --locked && cargo test --locked)

echo "== acceptance: shared sample against real Mosquitto and Redis"
if [ -f ../shared/acceptance/run.py ]; then
  python3 -c 'import paho.mqtt' 2>/dev/null || pip install -q paho-mqtt
  python3 ../shared/acceptance/run.py --bin target/ci/jicha --data ../shared/samples/small
  echo "== acceptance again, with jicha killed (SIGKILL) and restarted 40 % into the stream"
  python3 ../shared/acceptance/run.py --bin target/ci/jicha --data ../shared/samples/small --kill-at 0.4
else
  echo "error: ../shared/acceptance/run.py not found (the shared/ folder must sit beside the checkout)" >&2
  exit 1
fi
