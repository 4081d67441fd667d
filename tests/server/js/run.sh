#!/usr/bin/env bash
# Acceptance tests of `slim serve` with real clients and a real browser.
#
#   tests/server/js/run.sh clients   # official `openai` and `ollama` npm packages
#   tests/server/js/run.sh browser   # the web chat page in headless Chromium (playwright-core)
#
# Environment:
#   SLIM_BINARY        the slim executable (default: newest build*/slim of the repo)
#   SLIM_SHARED_DIR    folder holding models/ (default: ../shared beside the repo)
#   SLIM_ARTIFACT_DIR  where the screenshot and the server log go (default: build/artifacts)
#   SLIM_CHROMIUM      browser executable for `browser` (default: /usr/bin/chromium)
#
# It installs the pinned npm packages (package-lock.json) with `npm ci`, starts
# `slim serve` on 127.0.0.1 at a free port with stories260K and a synthetic
# model, waits for /health, runs the node tests against it and stops the server.
set -euo pipefail

mode="${1:-}"
case "$mode" in
  clients) tests=(clients.test.mjs) ;;
  browser) tests=(markdown.test.mjs browser.test.mjs) ;;
  *) echo "usage: $0 clients|browser" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

if [[ -z "${SLIM_BINARY:-}" ]]; then
  SLIM_BINARY="$(ls -t "$root"/build*/slim 2>/dev/null | head -n1 || true)"
fi
if [[ -z "${SLIM_BINARY:-}" || ! -x "$SLIM_BINARY" ]]; then
  echo "run.sh: no slim binary (set SLIM_BINARY)" >&2
  exit 1
fi
shared="${SLIM_SHARED_DIR:-$root/../shared}"
artifacts="${SLIM_ARTIFACT_DIR:-$root/build/artifacts}"
mkdir -p "$artifacts"
artifacts="$(cd "$artifacts" && pwd)"

models=("$shared/models/stories260K.gguf" "$shared/models/synthetic/qwen2-Q8_0.gguf")
for m in "${models[@]}"; do
  [[ -f "$m" ]] || { echo "run.sh: missing model $m" >&2; exit 1; }
done

command -v node >/dev/null || { echo "run.sh: node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "run.sh: npm is not installed" >&2; exit 1; }

# Install the pinned packages once per lockfile; a lock keeps the two ctest
# entries from installing into the same folder at the same time.
(
  cd "$here"
  exec 9>"$here/.npm-install.lock"
  flock 9
  if [[ -f package-lock.json ]]; then
    if ! cmp -s package-lock.json node_modules/.slim-installed-lock 2>/dev/null; then
      npm ci --no-audit --no-fund --loglevel=error >"$artifacts/npm-install-$mode.log" 2>&1 ||
        { cat "$artifacts/npm-install-$mode.log" >&2; exit 1; }
      cp package-lock.json node_modules/.slim-installed-lock
    fi
  else
    npm install --no-audit --no-fund --loglevel=error >"$artifacts/npm-install-$mode.log" 2>&1 ||
      { cat "$artifacts/npm-install-$mode.log" >&2; exit 1; }
  fi
)

if [[ "$mode" == browser ]]; then
  chromium_bin="${SLIM_CHROMIUM:-/usr/bin/chromium}"
  [[ -x "$chromium_bin" ]] || { echo "run.sh: $chromium_bin not found (apt-get install chromium)" >&2; exit 1; }
  export SLIM_CHROMIUM="$chromium_bin"
fi

# A free loopback port: bind port 0, read what the kernel gave, release it.
port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
log="$artifacts/slim-serve-$mode.log"

server_args=(serve --host 127.0.0.1 --port "$port" --parallel 2 -c 2048)
for m in "${models[@]}"; do server_args+=(--model "$m"); done
"$SLIM_BINARY" "${server_args[@]}" >"$log" 2>&1 &
server_pid=$!

stop_server() {
  if kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT

base="http://127.0.0.1:$port"
# Wait up to 60 s for /health.
if ! node -e '
  const url = process.argv[1] + "/health";
  const pid = Number(process.argv[2]);
  const deadline = Date.now() + 60000;
  (async () => {
    while (Date.now() < deadline) {
      try { process.kill(pid, 0); } catch (e) { process.exit(1); }
      try { const r = await fetch(url); if (r.ok) process.exit(0); } catch (e) {}
      await new Promise((r) => setTimeout(r, 100));
    }
    process.exit(1);
  })();' "$base" "$server_pid"; then
  echo "run.sh: slim serve did not become healthy at $base; its log:" >&2
  cat "$log" >&2
  exit 1
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "run.sh: slim serve exited; its log:" >&2
  cat "$log" >&2
  exit 1
fi

cd "$here"
status=0
SLIM_BASE_URL="$base" SLIM_ARTIFACT_DIR="$artifacts" SLIM_MODEL_FILES="$(IFS=:; echo "${models[*]}")" \
  node --test --test-concurrency=1 "${tests[@]}" || status=$?
if [[ $status -ne 0 ]]; then
  echo "run.sh: tests failed; server log: $log" >&2
  tail -n 40 "$log" >&2 || true
fi
exit $status
