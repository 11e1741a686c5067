#!/bin/sh
# The image's entrypoint: runs the CUDA build of gantrain when the container has a
# working NVIDIA GPU, else the CPU build. The CUDA build cannot start without a driver
# (gorgonia.org/cu's start-up calls cuInit and exits), so the choice is made here:
#   - no GPU visible (no /dev/nvidiactl and /dev/nvidiaN, as without --gpus): the CPU build;
#   - a GPU visible: `gantrain-cuda version` is run first as a probe (it fails when the
#     driver library is missing or cuInit fails, a driver/kernel mismatch say); if it
#     fails, the CPU build runs with a loud warning instead of the container crash-looping.
# GANTRAIN_BACKEND=cuda demands the GPU (exit 1 when there is none or it does not start),
# GANTRAIN_BACKEND=cpu forces the CPU build. `train` without --device (or --resume) gets
# --device cuda or cpu to match. A leading `gantrain` is dropped, so that both
# `docker run IMAGE train …` and `docker run IMAGE gantrain train …` work.
# GANTRAIN_BINDIR and GANTRAIN_DEVDIR (defaults /usr/local/bin, /dev) exist for tests.
set -eu
bindir=${GANTRAIN_BINDIR:-/usr/local/bin}
devdir=${GANTRAIN_DEVDIR:-/dev}
backend=${GANTRAIN_BACKEND:-auto}
say() { echo "gantrain: $*" >&2; }

if [ "${1:-}" = gantrain ]; then
	shift
fi
case $backend in
auto | cpu | cuda) ;;
*)
	say "GANTRAIN_BACKEND=$backend: want auto, cpu or cuda"
	exit 2
	;;
esac

bin=$bindir/gantrain-cpu
device=cpu
if [ "$backend" != cpu ]; then
	if [ -e "$devdir/nvidiactl" ] && ls "$devdir"/nvidia[0-9]* >/dev/null 2>&1; then
		# (a hung driver counts as a failure: timeout's status 124)
		probe=$(timeout 60 "$bindir/gantrain-cuda" version 2>&1) && rc=0 || rc=$?
		probe="exit status $rc: $(printf '%s' "$probe" | tail -n 2 | tr '\n' ' ')"
		if [ "$rc" = 0 ]; then
			bin=$bindir/gantrain-cuda
			device=cuda
		elif [ "$backend" = cuda ]; then
			say "GANTRAIN_BACKEND=cuda, but the GPU does not start ($probe)"
			say "check the host's NVIDIA driver (nvidia-smi) and the NVIDIA container toolkit"
			exit 1
		else
			say "WARNING: ********************************************************************"
			say "WARNING: a GPU is visible but the CUDA build cannot start ($probe)"
			say "WARNING: TRAINING ON THE CPU INSTEAD, many times slower."
			say "WARNING: check the host's NVIDIA driver (nvidia-smi) and the NVIDIA container toolkit;"
			say "WARNING: GANTRAIN_BACKEND=cuda makes this an error, GANTRAIN_BACKEND=cpu silences it."
			say "WARNING: ********************************************************************"
		fi
	elif [ "$backend" = cuda ]; then
		say "GANTRAIN_BACKEND=cuda but no NVIDIA GPU is visible (run with --gpus all and the NVIDIA container toolkit)"
		exit 1
	fi
fi
if [ "${1:-}" = train ]; then
	case " $* " in
	*" --device "* | *" --device="* | *" --resume "* | *" --resume="*) ;;
	*)
		shift
		set -- train --device "$device" "$@"
		;;
	esac
fi
say "using $(basename "$bin")"
exec "$bin" "$@"
