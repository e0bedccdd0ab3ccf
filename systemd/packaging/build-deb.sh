#!/usr/bin/env bash
# build-deb.sh ARCH VERSION BIN_DIR OUT_DIR
#
# Builds OUT_DIR/relay_<version>_<ARCH>.deb from BIN_DIR/relayd and BIN_DIR/relayctl (static
# linux/ARCH binaries) with nfpm, pinned below and never added to go.mod. ARCH is a Debian
# architecture: amd64 or arm64. VERSION may be a git describe string; it is turned into a valid
# Debian version (leading "v" dropped, "-" → "+", "0~" prefix when it does not start with a digit).
# Prints the path of the .deb on the last line.
#
# Environment: RELAY_EXAMPLE_CONFIG (default systemd/relay.example.toml) is the file installed as
# /etc/relay/relay.toml; NFPM_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/relay) holds the nfpm
# binary. Offline: nfpm is built from the Go module cache when it is there (GOPROXY falls back to
# the network only for what the cache lacks).
set -euo pipefail

# v2.45.2 is the newest nfpm that builds through the module proxy here: v2.46.0 and later need
# go.digitalxero.dev/go-msix, which the proxy refuses (403).
NFPM_VERSION=v2.45.2

die() { echo "build-deb.sh: $*" >&2; exit 1; }
[[ $# -eq 4 ]] || die "usage: build-deb.sh ARCH VERSION BIN_DIR OUT_DIR"
arch=$1 version=$2 bin_dir=$3 out_dir=$4

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin_dir=$(cd "$bin_dir" 2>/dev/null && pwd) || die "BIN_DIR $3 does not exist"
mkdir -p "$out_dir"; out_dir=$(cd "$out_dir" && pwd)
example=${RELAY_EXAMPLE_CONFIG:-$root/systemd/relay.example.toml}
example=$(cd "$(dirname "$example")" && pwd)/$(basename "$example")

case $arch in
amd64) machine=62 ;;
arm64) machine=183 ;;
*) die "ARCH must be amd64 or arm64 (got $arch); 32-bit is refused: Badger loses data there" ;;
esac
for b in relayd relayctl; do
	f=$bin_dir/$b
	[[ -f $f && -x $f ]] || die "$f: missing or not executable (run make cross first)"
	[[ $(head -c4 "$f" | od -An -c | tr -d ' ') == 177ELF ]] || die "$f: not an ELF binary"
	m=$(od -An -tu2 -j18 -N2 "$f" | tr -d ' ')
	[[ $m == "$machine" ]] || die "$f: ELF machine $m is not $arch ($machine)"
done
[[ -f $example ]] || die "$example: example config missing"

deb_version=${version#v}
deb_version=${deb_version//-/+}
[[ $deb_version =~ ^[0-9] ]] || deb_version="0~$deb_version"
[[ $deb_version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "VERSION $version does not make a Debian version"

cache=${NFPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/relay}
nfpm=$cache/nfpm-$NFPM_VERSION/nfpm
if [[ ! -x $nfpm ]]; then
	modcache=$(go env GOMODCACHE)
	GOBIN=$(dirname "$nfpm") GOFLAGS=-mod=mod GOWORK=off \
		GOPROXY="file://$modcache/cache/download,$(go env GOPROXY)" \
		go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" >&2
fi

stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/scripts"
cp "$bin_dir/relayd" "$bin_dir/relayctl" "$stage/bin/"
cp "$example" "$stage/relay.example.toml"
cp "$root/systemd/relayd.service" "$root/systemd/99-relay-modem.rules" "$root/systemd/INSTALL.md" \
	"$root/systemd/packaging/50-relay-poweroff.rules" "$root/systemd/packaging/nfpm.yaml" "$stage/"
cp "$root"/systemd/packaging/scripts/* "$stage/scripts/"

# Reproducible: every timestamp in the package is the last commit's (or SOURCE_DATE_EPOCH).
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
	SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

target=$out_dir/relay_${deb_version}_${arch}.deb
(cd "$stage" && RELAY_ARCH=$arch RELAY_VERSION=$deb_version \
	"$nfpm" package --config nfpm.yaml --packager deb --target "$target" >&2)
echo "$target"
