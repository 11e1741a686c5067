#!/bin/sh
# Runs the CUDA build of gantrain when the container sees an NVIDIA GPU (the NVIDIA
# runtime, `docker run --gpus all`, mounts the driver's libcuda.so.1 and the device
# nodes), else the CPU build: the CUDA build cannot start without a driver.
# `train` without --device then trains on cuda (GPU) or cpu. GANTRAIN_BACKEND=cpu
# forces the CPU build.
set -eu
bin=/usr/local/bin/gantrain-cpu
device=cpu
if [ "${GANTRAIN_BACKEND:-auto}" != cpu ] && [ -e /dev/nvidiactl ] && ls /dev/nvidia[0-9]* >/dev/null 2>&1 \
   && { ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; }; then
	bin=/usr/local/bin/gantrain-cuda
	device=cuda
elif [ "${GANTRAIN_BACKEND:-auto}" = cuda ]; then
	echo "gantrain: GANTRAIN_BACKEND=cuda but no NVIDIA GPU is visible (run with --gpus all and the NVIDIA container toolkit)" >&2
	exit 1
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
echo "gantrain: using $(basename "$bin")" >&2
exec "$bin" "$@"
