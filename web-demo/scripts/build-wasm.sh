#!/usr/bin/env bash
# Builds the playground's engine: crates/claimgate-wasm for wasm32-unknown-unknown (the size
# profile `wasm` of the workspace's Cargo.toml), its JavaScript glue with wasm-bindgen into
# web-demo/src/wasm/ (generated, not committed), then shrinks it with binaryen's wasm-opt -Oz
# (the npm devDependency `binaryen`: run `npm ci` in web-demo/ first).
#
# Prints the .wasm size in bytes at each step, raw and gzipped.
set -euo pipefail

demo="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$demo/.." && pwd)"
cd "$root"

out="web-demo/src/wasm"
built="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm/claimgate_wasm.wasm"

# The wasm-bindgen CLI must be the very version of the `wasm-bindgen` crate in Cargo.lock: the
# glue it writes and the custom sections the crate emits are one protocol.
locked="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [[ -z "$locked" ]]; then
  echo "build-wasm: no wasm-bindgen package in Cargo.lock" >&2
  exit 1
fi
installed="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [[ "$installed" != "$locked" ]]; then
  echo "build-wasm: wasm-bindgen ${installed:-is not installed}${installed:+ is installed} but Cargo.lock has $locked; install it with:" >&2
  echo "  cargo install wasm-bindgen-cli --version $locked" >&2
  exit 1
fi

wasm_opt="$demo/node_modules/.bin/wasm-opt"
if [[ ! -x "$wasm_opt" ]]; then
  echo "build-wasm: $wasm_opt is missing; run \`npm ci\` in web-demo/ first" >&2
  exit 1
fi

size() { wc -c <"$1" | tr -d ' '; }
gz() { gzip -9 -c "$1" | wc -c | tr -d ' '; }
report() { printf 'build-wasm: %-28s %9s bytes (gzip -9: %s bytes)\n' "$1" "$(size "$2")" "$(gz "$2")"; }

echo "build-wasm: cargo build --profile wasm --target wasm32-unknown-unknown -p claimgate-wasm"
cargo build --profile wasm --target wasm32-unknown-unknown -p claimgate-wasm

echo "build-wasm: wasm-bindgen $installed --target web --out-dir $out"
rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" "$built"

wasm="$out/claimgate_wasm_bg.wasm"
report "cargo (profile wasm)" "$built"
report "after wasm-bindgen" "$wasm"

# wasm-opt takes the features to allow from the module's `target_features` section (which rustc
# writes and wasm-bindgen keeps), so it accepts exactly what rustc used, whatever the Rust
# version's defaults; the section is then dropped from the output, as browsers ignore it.
echo "build-wasm: wasm-opt -Oz ($("$wasm_opt" --version))"
"$wasm_opt" -Oz --strip-debug --strip-producers --strip-target-features "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
report "after wasm-opt -Oz" "$wasm"

goal=$((600 * 1024))
for what in raw gzipped; do
  if [[ $what == raw ]]; then bytes="$(size "$wasm")"; else bytes="$(gz "$wasm")"; fi
  if ((bytes < goal)); then verdict="under"; else verdict="above"; fi
  echo "build-wasm: $what: $bytes bytes, $verdict the 600 KB goal ($goal bytes)"
done
