#!/usr/bin/env bash
# Runs the fuzz targets (see fuzz/README.md).
#
#   fuzz/run.sh TARGET [SECONDS]   fuzz one target (default 600 s), one job on one core, starting
#                                  from seeds/TARGET; new inputs go to corpus/TARGET, libFuzzer's
#                                  log to corpus/TARGET.log, crashes to artifacts/TARGET/
#   fuzz/run.sh --replay           build every target and run each committed seed once (CI)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --version 0.13.2 --locked`). Stable Rust is enough:
# RUSTC_BOOTSTRAP=1 lets it accept the -Z flags cargo-fuzz passes. FUZZ_SANITIZER picks the
# sanitizer (default `none`; `address` works too, about nine times slower).
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-none}
targets=(policy_source format_roundtrip evaluate jws_verify keys decode_unverified load_program)

options() {
  case $1 in
    policy_source | format_roundtrip) echo "-max_len=8192 -dict=dicts/claimgate.dict" ;;
    keys) echo "-max_len=8192 -dict=dicts/keys.dict" ;;
    evaluate) echo "-max_len=4096 -dict=dicts/claims.dict" ;;
    load_program) echo "-max_len=16384" ;;
    *) echo "-max_len=4096" ;;
  esac
}

if [[ ${1:-} == --replay ]]; then
  cargo fuzz build -s "$sanitizer"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    # -runs=0: execute every seed once and generate nothing. A panic or a timeout fails the step.
    # shellcheck disable=SC2046
    if ! cargo fuzz run -s "$sanitizer" "$target" "$scratch/$target" "seeds/$target" -- \
      -runs=0 -timeout=10 $(options "$target") >"$scratch/$target.log" 2>&1; then
      cat "$scratch/$target.log"
      echo "fuzz target $target failed on its seeds" >&2
      exit 1
    fi
    echo "$target: $(grep -E '^Done [0-9]+ runs' "$scratch/$target.log")"
  done
  exit 0
fi

target=${1:?usage: fuzz/run.sh TARGET [SECONDS] | --replay}
seconds=${2:-600}
mkdir -p "corpus/$target"
rm -f fuzz-0.log
status=0
# shellcheck disable=SC2046
cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
  -jobs=1 -workers=1 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  $(options "$target") || status=$?
if [[ -f fuzz-0.log ]]; then
  mv fuzz-0.log "corpus/$target.log"
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^Done |panicked|^==[0-9]+==|^SUMMARY' "corpus/$target.log" | tail -n 12
fi
echo "corpus/$target: $(find "corpus/$target" -type f | wc -l) files"
exit "$status"
