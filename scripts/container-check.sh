#!/usr/bin/env bash
# scripts/container-check.sh: build the gantrain image from this checkout and check
# that it runs as the README says. Run as root on Debian 12 (CI calls it from .ci/run).
#
#   1. installs podman (daemonless, no Docker engine needed), runc, iptables, debootstrap;
#   2. uses a private containers.conf (runc; ulimits this host allows), so that
#      /etc/containers is left alone;
#   3. base images: pulled from Docker Hub when it answers; when no registry can be
#      reached they are made locally under the same names: debian:bookworm-slim by
#      debootstrap from the machine's Debian mirror, golang:1.26-bookworm from that plus
#      the build packages and this machine's Go;
#   4. builds Dockerfile.cuda (GOPROXY/GOSUMDB from `go env` as build args, the
#      machine's CA bundle as the `ca` build secret), the build stage too, and prints
#      the image's size, its layers and the build time;
#   5. runs the image: the CPU build is chosen, training starts, /healthz, /readyz and
#      /metrics answer, `podman stop` gives a checkpoint and exit 0, a restart on the
#      same volume resumes; a root-owned host folder as /runs fails at once saying what
#      to do and works once chowned to the image's uid:gid; `IMAGE gantrain train …`
#      (the command replaced) runs; a visible GPU whose driver does not start gives the
#      CPU build with a warning, or exit 1 with GANTRAIN_BACKEND=cuda;
#   6. starts gantrain and Prometheus from docker/compose.yaml with podman-compose (a
#      Prometheus image made from Debian's package where none can be pulled) and checks
#      that Prometheus scrapes gantrain as up and has loaded gantrain's rules.
#
# Prints PASS/FAIL lines and a timing table; exits 1 if any check failed.
# Environment: WORK (scratch, default /tmp/gantrain-container-check), IMAGE (default
# localhost/gantrain:check), PORT (host port of the smoke test, default 19090; PORT+1
# is Prometheus's in the compose check),
# REBUILD_BASE=1 (remake the local base images), NO_CACHE=1 (build without the layer
# cache), KEEP=1 (keep the smoke test's volume).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/gantrain-container-check}
IMAGE=${IMAGE:-localhost/gantrain:check}
PORT=${PORT:-19090}
SLIM=docker.io/library/debian:bookworm-slim
GOLANG=docker.io/library/golang:1.26-bookworm
NAME=gantrain-check
VOL=gantrain-check-runs
LOG=$WORK/logs

fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
info() { echo "INFO: $*"; }
step() { echo "== $* ($(date -u +%H:%M:%S))"; }
declare -A T
order=()
timed() { # NAME CMD...: run CMD, record its seconds under NAME
	local n=$1 t0 rc=0
	shift
	t0=$(date +%s)
	"$@" || rc=$?
	T[$n]=$(($(date +%s) - t0))
	order+=("$n")
	return "$rc"
}
# check DESCRIPTION CONDITION...: PASS or FAIL on the condition's status
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

[ "$(id -u)" = 0 ] || { echo "FAIL: run as root (podman, debootstrap, apt)"; exit 1; }
mkdir -p "$LOG"
t_start=$(date +%s)

# ---- 1. packages ------------------------------------------------------------------------
install_packages() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# podman-compose, aardvark-dns (service names resolve between containers) and jq:
	# the compose check
	apt-get install -y -qq --no-install-recommends podman runc iptables debootstrap curl ca-certificates \
		podman-compose aardvark-dns jq >"$LOG/apt.log" 2>&1
}
step "install podman, runc, iptables, debootstrap"
timed packages install_packages || { fail "apt-get install (see $LOG/apt.log)"; exit 1; }
podman --version

# ---- 2. a private containers.conf ---------------------------------------------------------
# Debian 12's crun refuses hosts with a hybrid cgroup layout whose v2 half holds a
# controller; runc works on both. Podman asks for nofile/nproc limits of 1048576, more than
# a host without CAP_SYS_RESOURCE may give (setrlimit EPERM); podman itself runs with
# nproc at most 32768. Netavark, not CNI (which podman may pick on a machine that has its
# plugins): with aardvark-dns, compose services find each other by name. Its subnets are
# not podman's defaults, which bridges left by CNI may hold (routes that would swallow
# the containers' traffic).
nofile=$(ulimit -Hn)
if [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ]; then nofile=1048576; fi
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"
default_subnet = "10.118.0.0/24"
default_subnet_pools = [{"base" = "10.119.0.0/16", "size" = 24}]
EOF
export CONTAINERS_CONF=$WORK/containers.conf

# ---- 3. base images -----------------------------------------------------------------------
sources=/etc/apt/sources.list.d/debian.sources
mirror() {
	if [ -f "$sources" ]; then
		awk '/^URIs:/{print $2; exit}' "$sources"
	else
		awk '$1 == "deb" && / bookworm /{print $2; exit}' /etc/apt/sources.list
	fi
}

# dockerish ROOTFS: what the Docker Hub debian image has and debootstrap does not: the
# deb822 /etc/apt/sources.list.d/debian.sources (Dockerfile.cuda edits it), the docker-*
# apt and dpkg settings, no caches, no resolv.conf or hostname.
dockerish() {
	local r=$1 m=$2
	rm -f "$r/etc/apt/sources.list" "$r/etc/resolv.conf" "$r/etc/hostname"
	mkdir -p "$r/etc/apt/sources.list.d"
	if [ -f "$sources" ]; then
		cp "$sources" "$r/etc/apt/sources.list.d/debian.sources"
	else
		printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$m" "$m" >"$r/etc/apt/sources.list.d/debian.sources"
	fi
	cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
	echo 'Acquire::GzipIndexes "true";' >"$r/etc/apt/apt.conf.d/docker-gzip-indexes"
	echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
	echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
	echo 'force-unsafe-io' >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
		"$r"/var/log/*.log "$r"/var/log/apt/* "$r"/tmp/*
}

# slimify ROOTFS: the dpkg path excludes of the -slim images, and the files they exclude.
slimify() {
	local r=$1
	printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
		'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
		'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/lintian/overrides/*' \
		'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
		'path-exclude /usr/share/man/*' >"$r/etc/dpkg/dpkg.cfg.d/docker"
	find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
	find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
	rm -rf "$r"/usr/share/groff/* "$r"/usr/share/info/* "$r"/usr/share/linda/* \
		"$r"/usr/share/lintian/overrides/* "$r"/usr/share/man/*
	find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
}

# make_base_images: the two base images, made here under the Docker Hub names.
make_base_images() {
	local m goroot gover r=$WORK/rootfs-slim g=$WORK/rootfs-golang rc=0
	m=$(mirror)
	[ -n "$m" ] || { echo "no Debian mirror in /etc/apt" >&2; return 1; }
	goroot=$(go env GOROOT)
	gover=$(go env GOVERSION)
	case $gover in go1.26*) ;; *)
		echo "the local golang:1.26 image needs Go 1.26 on this machine, found $gover" >&2
		return 1
		;;
	esac
	rm -rf "$r" "$g"
	debootstrap --variant=minbase bookworm "$r" "$m" >"$LOG/debootstrap.log" 2>&1
	dockerish "$r" "$m"
	# golang:1.26-bookworm is buildpack-deps:bookworm-scm plus a C toolchain and Go.
	cp -a "$r" "$g"
	cp -L /etc/resolv.conf "$g/etc/resolv.conf"
	mount -t proc proc "$g/proc"
	chroot "$g" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c '
		apt-get update -qq &&
		apt-get install -y -qq --no-install-recommends ca-certificates curl wget netbase git \
			openssh-client procps g++ gcc libc6-dev make pkg-config &&
		rm -rf /var/lib/apt/lists/*' >"$LOG/golang-rootfs.log" 2>&1 || rc=$?
	umount "$g/proc"
	rm -f "$g/etc/resolv.conf"
	[ "$rc" = 0 ] || { echo "golang rootfs packages failed (see $LOG/golang-rootfs.log)" >&2; return 1; }
	cp -a "$goroot" "$g/usr/local/go"
	mkdir -p "$g/go/src" "$g/go/bin"
	chmod -R 1777 "$g/go"
	slimify "$r"
	tar -C "$r" --numeric-owner -c . | podman import --change 'CMD ["bash"]' - "$SLIM" >"$LOG/import.log" 2>&1
	tar -C "$g" --numeric-owner -c . | podman import \
		--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change "ENV GOLANG_VERSION=${gover#go}" --change 'ENV GOTOOLCHAIN=local' --change 'ENV GOPATH=/go' \
		--change 'WORKDIR /go' --change 'CMD ["bash"]' - "$GOLANG" >>"$LOG/import.log" 2>&1
	rm -rf "$r" "$g"
}

step "base images"
if [ "${REBUILD_BASE:-0}" != 1 ] && podman image exists "$SLIM" && podman image exists "$GOLANG"; then
	info "base images present (REBUILD_BASE=1 remakes local ones)"
elif [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 https://registry-1.docker.io/v2/ || true)" = 401 ]; then
	info "Docker Hub answers: pulling the base images"
	timed base_images sh -c "podman pull -q $SLIM && podman pull -q $GOLANG" >"$LOG/pull.log" 2>&1 ||
		{ fail "podman pull (see $LOG/pull.log)"; exit 1; }
else
	info "no registry reachable: making $SLIM and $GOLANG here (debootstrap, this machine's Go)"
	timed base_images make_base_images || { fail "making the base images"; exit 1; }
fi
if podman run --rm "$SLIM" true >"$LOG/run-probe.log" 2>&1; then
	pass "podman runs a container"
else
	fail "podman cannot run a container: $(tail -1 "$LOG/run-probe.log")"
	exit 1
fi

# ---- 4. build ------------------------------------------------------------------------------
build_args=(--pull=never -f "$SRC/Dockerfile.cuda")
if command -v go >/dev/null; then
	build_args+=(--build-arg "GOPROXY=$(go env GOPROXY)" --build-arg "GOSUMDB=$(go env GOSUMDB)")
fi
# HTTPS may be re-signed by a local CA on the way to the module proxy: the build gets the
# machine's bundle as the documented `ca` secret.
[ -f /etc/ssl/certs/ca-certificates.crt ] && build_args+=(--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt)
step "podman build -f Dockerfile.cuda -t $IMAGE (log: $LOG/build.log)"
no_cache=()
[ "${NO_CACHE:-0}" = 1 ] && no_cache=(--no-cache)
if timed build podman build "${build_args[@]}" "${no_cache[@]}" -t "$IMAGE" "$SRC" >"$LOG/build.log" 2>&1; then
	pass "image built in ${T[build]}s"
else
	fail "build: $(tail -3 "$LOG/build.log" | tr '\n' ' ')"
	exit 1
fi
# The build stage, for its size: served from the cache just filled.
podman build "${build_args[@]}" --target build -t "$IMAGE-build" "$SRC" >"$LOG/build-stage.log" 2>&1 || true

# ---- 5. running it ---------------------------------------------------------------------------
url=http://127.0.0.1:$PORT
cleanup() {
	podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
	[ "${KEEP:-0}" = 1 ] || podman volume rm -f "$VOL" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
podman volume create "$VOL" >/dev/null

# wait_code PATH CODE SECONDS: until PATH answers CODE
wait_code() {
	local i
	for ((i = 0; i < $3; i++)); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$url$1")" = "$2" ] && return 0
		sleep 1
	done
	return 1
}
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# (not `podman logs | grep -q`: under pipefail, grep's early exit fails the pipe)
logs_have() { grep -q -- "$1" <<<"$(podman logs "$NAME" 2>&1)"; }

# smoke N: the image's default command on the volume; then SIGTERM
smoke() {
	local n=$1 t0 s1 s2 code ck res
	t0=$(date +%s)
	podman run -d --name "$NAME" -p "127.0.0.1:$PORT:9090" -v "$VOL:/runs" "$IMAGE" >/dev/null
	if wait_code /healthz 200 60; then pass "run $n: /healthz 200 after $(($(date +%s) - t0))s"; else fail "run $n: /healthz"; fi
	if wait_code /readyz 200 180; then
		pass "run $n: /readyz 200 (training) after $(($(date +%s) - t0))s"
	else
		fail "run $n: /readyz never 200"
	fi
	check "run $n: the entrypoint chose gantrain-cpu (no GPU)" logs_have 'gantrain: using gantrain-cpu'
	s1=$(metric gantrain_step)
	sleep 8
	s2=$(metric gantrain_step)
	if [ -n "$s1" ] && [ -n "$s2" ] && [ "$s2" -gt "$s1" ] && [ "$(metric gantrain_ready)" = 1 ]; then
		pass "run $n: /metrics gantrain_step $s1 -> $s2 in 8s, gantrain_ready 1"
	else
		fail "run $n: /metrics gantrain_step '$s1' -> '$s2'"
	fi
	if [ "$n" = 2 ]; then
		res=$(podman logs "$NAME" 2>&1 | grep -o 'msg=resuming step=[0-9]*' || true)
		check "run 2: resumed from the volume ($res)" test -n "$res"
	fi
	t0=$(date +%s)
	podman stop -t 60 "$NAME" >/dev/null
	code=$(podman inspect "$NAME" --format '{{.State.ExitCode}}')
	podman logs "$NAME" >"$LOG/smoke$n.log" 2>&1
	ck=$(sed -n '/stopping on request/,$p' "$LOG/smoke$n.log" | grep -o 'msg=checkpoint step=[0-9]*' | tail -1 || true)
	check "run $n: podman stop -> $ck, exit $code, in $(($(date +%s) - t0))s" test "$code" = 0 -a -n "$ck"
	podman rm "$NAME" >/dev/null
}
step "smoke test: the default command on volume $VOL, port $PORT"
if curl -s -o /dev/null "$url/healthz"; then
	fail "port $PORT answers already; set PORT"
else
	timed smoke1 smoke 1
	timed smoke2 smoke 2
fi

short=(train --steps 3 --batch 10 --data /opt/gantrain/mnist --listen off)
step "a host folder as /runs"
bind=$(mktemp -d "$WORK/bind.XXXX")
chmod 755 "$bind"
out=$(podman run --rm -v "$bind:/runs" "$IMAGE" "${short[@]}" --out /runs/mnist 2>&1) && rc=0 || rc=$?
echo "$out" | tail -1 | sed 's/^/  /'
check "root-owned /runs: refused at once (exit $rc) naming the owner and the fix" \
	grep -q 'belongs to uid 0 gid 0.*chown 10001:10001' <<<"$out"
chown 10001:10001 "$bind"
out=$(podman run --rm -v "$bind:/runs" "$IMAGE" "${short[@]}" --out /runs/mnist 2>&1) && rc=0 || rc=$?
check "/runs chowned to 10001:10001: trains (exit $rc)" test "$rc" = 0 -a -d "$bind/mnist/checkpoints"
rm -rf "$bind"
check "the image's user is uid 10001 gid 10001" \
	test "$(podman run --rm --entrypoint id "$IMAGE")" = "uid=10001(gantrain) gid=10001(gantrain) groups=10001(gantrain)"

step "replacing the command"
out=$(podman run --rm "$IMAGE" gantrain "${short[@]}" --out /tmp/mnist 2>&1) && rc=0 || rc=$?
check "IMAGE gantrain train …: exit $rc, on the CPU" grep -q 'backend=cpu\|device=cpu\|using gantrain-cpu' <<<"$out"
[ "$rc" = 0 ] || fail "IMAGE gantrain train …: exit $rc: $(echo "$out" | tail -2 | tr '\n' ' ')"
out=$(podman run --rm "$IMAGE" version 2>/dev/null) || true
check "IMAGE version: $out" grep -q '^gantrain ' <<<"$out"

step "a GPU visible, its driver missing"
gpu=(--device /dev/null:/dev/nvidiactl --device /dev/null:/dev/nvidia0)
out=$(podman run --rm "${gpu[@]}" "$IMAGE" version 2>&1) && rc=0 || rc=$?
check "the CUDA build does not start: CPU build with a warning (exit $rc)" \
	grep -q 'TRAINING ON THE CPU INSTEAD' <<<"$out"
out=$(podman run --rm "${gpu[@]}" -e GANTRAIN_BACKEND=cuda "$IMAGE" version 2>&1) && rc=0 || rc=$?
check "GANTRAIN_BACKEND=cuda: exit 1 (got $rc) saying the GPU does not start" \
	test "$rc" = 1 -a -n "$(grep 'the GPU does not start' <<<"$out")"
out=$(podman run --rm -e GANTRAIN_BACKEND=cuda "$IMAGE" version 2>&1) && rc=0 || rc=$?
check "GANTRAIN_BACKEND=cuda without a GPU: exit 1 (got $rc)" test "$rc" = 1

step "compose: gantrain and Prometheus of docker/compose.yaml"
# No Prometheus image can be pulled here: a stand-in from Debian's prometheus package,
# started the way compose.yaml starts prom/prometheus. Grafana has no such stand-in; its
# provisioning is checked by the Go tests (service/compose_test.go).
PROM_IMAGE=localhost/prometheus-debian:check
PROJECT=gantrain-check
compose() {
	GANTRAIN_IMAGE=$IMAGE PROMETHEUS_IMAGE=$PROM_IMAGE GANTRAIN_PORT=$PORT PROMETHEUS_PORT=$((PORT + 1)) \
		podman-compose -p "$PROJECT" -f "$SRC/docker/compose.yaml" "$@"
}
compose_down() { compose down -v >>"$LOG/compose.log" 2>&1 || true; }
prom_api() { curl -s "http://127.0.0.1:$((PORT + 1))/api/v1/$1"; }
target_up() { prom_api targets | jq -e '.data.activeTargets[] | select(.labels.job == "gantrain" and .health == "up")' >/dev/null; }
# rules_ok: how many rules of group gantrain Prometheus has evaluated without error
# (a rule's health is "unknown" until its first evaluation, up to 15 s after loading)
rules_ok() { prom_api rules | jq -r '[.data.groups[] | select(.name == "gantrain") | .rules[] | select(.health == "ok")] | length'; }
want_rules=$(grep -cE '^ *- (record|alert):' "$SRC/docker/prometheus/gantrain.rules.yml")
compose_check() {
	printf '%s\n' "FROM $SLIM" \
		'RUN apt-get update -qq \' \
		' && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \' \
		' && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus && chown nobody:nogroup /prometheus' \
		'USER nobody' 'ENTRYPOINT ["/usr/bin/prometheus"]' >"$WORK/Containerfile.prometheus"
	podman build --pull=never -t "$PROM_IMAGE" -f "$WORK/Containerfile.prometheus" "$WORK" \
		>"$LOG/prometheus-image.log" 2>&1 || return 1
	compose_down
	compose up -d gantrain prometheus >>"$LOG/compose.log" 2>&1 || return 1
	local i
	for ((i = 0; i < 90; i++)); do
		target_up && [ "$(rules_ok)" = "$want_rules" ] && break
		sleep 2
	done
}
if timed compose compose_check; then
	check "Prometheus's targets: job gantrain up" target_up
	rules=$(rules_ok)
	check "Prometheus loaded gantrain.rules.yml: $rules of $want_rules rules evaluated without error" test "$rules" = "$want_rules"
	step=$(prom_api 'query?query=gantrain_step' | jq -r '.data.result[0].value[1] // empty')
	check "Prometheus has scraped gantrain_step ($step)" test -n "$step"
else
	fail "compose up (see $LOG/compose.log, $LOG/prometheus-image.log)"
fi
podman ps -a --format '{{.Names}}' | grep "^${PROJECT}_gantrain" | head -1 |
	xargs -r podman logs >"$LOG/compose-gantrain.log" 2>&1 || true
compose_down

step "the image"
missing=$(podman run --rm --entrypoint ldd "$IMAGE" /usr/local/bin/gantrain-cuda 2>&1 | awk '/not found/{print $1}' | tr '\n' ' ')
check "gantrain-cuda lacks only libcuda.so.1 (the NVIDIA runtime mounts it): '$missing'" test "$missing" = "libcuda.so.1 "
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
bsize=$(podman image inspect "$IMAGE-build" --format '{{.Size}}' 2>/dev/null || echo 0)
echo "IMAGE SIZE: $((size / 1000000)) MB ($IMAGE); build stage $((bsize / 1000000)) MB"
podman history "$IMAGE" --format '  {{.Size}}	{{.CreatedBy}}' | grep -v '	*0 *B' | cut -c1-120 || true

step "times (s)"
for k in "${order[@]}"; do printf '  %-12s %4d\n' "$k" "${T[$k]}"; done
printf '  %-12s %4d\n' total $(($(date +%s) - t_start))
if [ "$fails" = 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL ($fails)"; exit 1; fi
