#!/usr/bin/env bash
# Compares two builds of `claimgate serve` on one endpoint: both servers run at once, pinned to
# CPU 1 (each idle while the other is loaded), and wrk on CPU 0 alternates between them in short
# closed-loop runs. This VM's speed drifts by 10-20% over minutes, so runs of one build minutes
# after the other compare badly; alternating every few seconds, each build sees the same drift.
# Prints, per build, the median server CPU per request (from /proc, user + system) and rate,
# and how many rounds the second build was faster in. A bench script: it asserts nothing.
#
# Usage: benches/serve-ab.sh ENDPOINT BIN_A BIN_B
#        ENDPOINT: vault | batch | conjur | strongbox | floor (a login refused before work)
#        ROUNDS=12 SECONDS_EACH=2 CONNECTIONS=32 PORT_A=8401 PORT_B=8402
#        NO_IDLE_HALT=1 (root): idle CPUs poll for the whole comparison (see serve-load.sh)
# Keep a build aside with `cp target/release/claimgate /tmp/claimgate-a` before changing it.
set -euo pipefail
cd "$(dirname "$0")/.."
endpoint=$1
bins=("$2" "$3")
rounds=${ROUNDS:-12}
ports=("${PORT_A:-8401}" "${PORT_B:-8402}")
for tool in wrk taskset python3 curl; do
  command -v "$tool" >/dev/null || { echo "serve-ab: $tool is missing"; exit 2; }
done
if [[ "${NO_IDLE_HALT:-0}" == 1 ]]; then
  exec 9>/dev/cpu_dma_latency || { echo "serve-ab: NO_IDLE_HALT=1 needs root"; exit 2; }
  printf '\x00\x00\x00\x00' >&9
fi
cargo build --release -q -p claimgate-benches --bin serve_load_setup
dir=$(mktemp -d /tmp/claimgate-ab.XXXXXX)
taskset -c 1 target/release/serve_load_setup "$dir" "${ports[0]}" >/dev/null
case $endpoint in
  vault) path=/v1/auth/ci/login body=vault-valid.json type=application/json ;;
  batch) path=/v1/auth/ci/login body=vault-batch-valid.json type=application/json ;;
  conjur) path=/authn-jwt/ci/load/authenticate body=conjur-valid.form type=application/x-www-form-urlencoded ;;
  strongbox) path=/v1/jwt-login body=strongbox-valid.json type=application/json ;;
  floor) path=/v1/auth/ci/login body=empty.json type=application/json; echo '{}' >"$dir/bodies/empty.json" ;;
  *) echo "serve-ab: unknown endpoint $endpoint"; exit 2 ;;
esac
servers=()
trap 'kill "${servers[@]}" 2>/dev/null || true' EXIT
for i in 0 1; do
  mkdir -p "$dir/$i"
  sed "s#^data_dir = .*#data_dir = \"$dir/$i/data\"#" "$dir/serve.toml" >"$dir/$i/serve.toml"
  taskset -c 1 "${bins[$i]}" serve --policies "$dir/policies" --config "$dir/$i/serve.toml" \
    --listen "127.0.0.1:${ports[$i]}" 2>"$dir/$i/server.log" &
  servers+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:${ports[$i]}/healthz" >/dev/null && break; sleep 0.1; done
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq "$rounds"); do
  for i in 0 1; do
    before=$(cpu_ticks "${servers[$i]}")
    result=$(BODY_FILE="$dir/bodies/$body" CONTENT_TYPE="$type" taskset -c 0 wrk -t1 -c"${CONNECTIONS:-32}" \
      -d"${SECONDS_EACH:-2}s" -s benches/serve/post.lua "http://127.0.0.1:${ports[$i]}$path" | grep '^RESULT')
    echo "$i $round $before $(cpu_ticks "${servers[$i]}") $result" >>"$dir/rounds.txt"
  done
done
python3 - "$dir/rounds.txt" "$(getconf CLK_TCK)" "${bins[@]}" <<'EOF'
import re, statistics, sys
path, ticks_per_second, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = {0: [], 1: []}
for line in open(path):
    side, _, before, after, *rest = line.split()
    rate = float(re.search(r"rps=([0-9.]+)", line).group(1))
    requests = int(re.search(r"requests=([0-9]+)", line).group(1))
    runs[int(side)].append((rate, (int(after) - int(before)) / ticks_per_second * 1e6 / requests))
for side in (0, 1):
    rates, cpu = zip(*runs[side])
    print(f"{'AB'[side]} {names[side]}: {statistics.median(cpu):.2f} us of server CPU a request (median), "
          f"{statistics.median(rates):.0f} requests/s (median)")
ratios = [b[0] / a[0] for a, b in zip(runs[0], runs[1])]
print(f"B/A rate: median {statistics.median(ratios):.3f}; B faster in {sum(r > 1 for r in ratios)} of {len(ratios)} rounds")
EOF
rm -rf "$dir"
