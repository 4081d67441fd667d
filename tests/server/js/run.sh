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
# model, hybrid: a second `slim serve` (another synthetic model) is its remote
# endpoint `cloud` under --policy auto; the browser mode adds one server under
# --policy ask and one whose remote fails. It waits for /health, runs the node
# tests against them and stops every server on exit.
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

# The servers, each on a free loopback port (--port 0: the kernel picks one,
# the server prints it), with a temporary SLIM_HOME so that no user config,
# store or audit log is read or written:
#   remote  a second slim serve with another model, standing in for a cloud
#           endpoint (OpenAI-compatible /v1)
#   main    stories260K and a synthetic model, hybrid: --remote-url → remote,
#           named `cloud`, --policy auto (so /v1/models also lists auto, cloud)
# and for the browser, two more hybrid servers of the same kind:
#   ask       --policy ask: the router offers the escalation, the user confirms
#   fallback  its endpoint asks the remote for a model it does not serve (HTTP
#             404), so escalated requests fall back to the local answer
remote_model_file="$shared/models/synthetic/llama-Q8_0.gguf"
remote_model="$(basename "$remote_model_file" .gguf)"
remote_name=cloud
[[ -f "$remote_model_file" ]] || { echo "run.sh: missing model $remote_model_file" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/slim-js-$mode-XXXXXX")"
export SLIM_HOME="$tmp/home"
mkdir -p "$SLIM_HOME"
pids=()

stop_servers() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server NAME ARGS...: starts `slim serve ARGS` with its log in
# $artifacts/slim-serve-$mode[-NAME].log, waits up to 60 s for /health and
# sets $url to its http://127.0.0.1:PORT.
start_server() {
  local name="$1"; shift
  local log="$artifacts/slim-serve-$mode${name:+-$name}.log"
  "$SLIM_BINARY" serve --host 127.0.0.1 --port 0 "$@" >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  url=""
  if ! node -e '
    const fs = require("fs");
    const [log, pid] = [process.argv[1], Number(process.argv[2])];
    const deadline = Date.now() + 60000;
    (async () => {
      let base = "";
      while (Date.now() < deadline) {
        try { process.kill(pid, 0); } catch (e) { process.exit(1); }
        if (!base) {
          const m = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(fs.readFileSync(log, "utf8"));
          if (m) base = m[1];
        }
        if (base) {
          try { const r = await fetch(base + "/health"); if (r.ok) { console.log(base); process.exit(0); } } catch (e) {}
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      process.exit(1);
    })();' "$log" "$pid" >"$tmp/url"; then
    echo "run.sh: slim serve ($name) did not become healthy; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  url="$(cat "$tmp/url")"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: slim serve ($name) exited; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
}

common=(--parallel 2 -c 2048)
# The remote holds more context than the local models, as a cloud endpoint
# would: a chat whose local answers filled 2048 tokens can still go there.
start_server remote --parallel 2 -c 4096 --model "$remote_model_file"
remote_url="$url"

main_args=("${common[@]}")
for m in "${models[@]}"; do main_args+=(--model "$m"); done
hybrid=(--remote-url "$remote_url/v1" --remote-model "$remote_model" --remote-name "$remote_name" --remote-timeout 30s)
start_server "" "${main_args[@]}" "${hybrid[@]}" --policy auto --audit-log "$tmp/audit.jsonl"
base="$url"

ask_url=""
fallback_url=""
if [[ "$mode" == browser ]]; then
  start_server ask "${common[@]}" --model "${models[0]}" "${hybrid[@]}" --policy ask --audit-log "$tmp/audit-ask.jsonl"
  ask_url="$url"
  start_server fallback "${common[@]}" --model "${models[0]}" \
    --remote-url "$remote_url/v1" --remote-model "no-such-model" --remote-name "$remote_name" \
    --policy auto --audit-log "$tmp/audit-fallback.jsonl"
  fallback_url="$url"
fi
log="$artifacts/slim-serve-$mode.log"

cd "$here"
status=0
SLIM_BASE_URL="$base" SLIM_ARTIFACT_DIR="$artifacts" SLIM_MODEL_FILES="$(IFS=:; echo "${models[*]}")" \
  SLIM_REMOTE_URL="$remote_url" SLIM_REMOTE_MODEL="$remote_model" SLIM_REMOTE_NAME="$remote_name" \
  SLIM_AUDIT_LOG="$tmp/audit.jsonl" SLIM_ASK_URL="$ask_url" SLIM_FALLBACK_URL="$fallback_url" \
  node --test --test-concurrency=1 "${tests[@]}" &
# In the background, so that a TERM or INT stops the tests and the servers at once.
node_pid=$!
pids=("$node_pid" "${pids[@]}")
wait "$node_pid" || status=$?
if [[ $status -ne 0 ]]; then
  echo "run.sh: tests failed; server log: $log" >&2
  tail -n 40 "$log" >&2 || true
  echo "run.sh: the remote's log: $artifacts/slim-serve-$mode-remote.log" >&2
fi
exit $status
