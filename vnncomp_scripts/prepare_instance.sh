#!/bin/bash
# VNN-COMP prepare_instance.sh for equivrepair: checks that the network and property load.
# usage: prepare_instance.sh v1 CATEGORY ONNX VNNLIB
# Nothing to kill: run_instance.sh runs in the foreground and ends by itself.
TOOL_NAME=equivrepair
VERSION_STRING=v1
if [ "$1" != "$VERSION_STRING" ]; then
    echo "Expected first argument (version string) '$VERSION_STRING', got '$1'"
    exit 1
fi
CATEGORY=$2
ONNX_FILE=$3
VNNLIB_FILE=$4
echo "Preparing $TOOL_NAME for category '$CATEGORY' with onnx '$ONNX_FILE' and vnnlib '$VNNLIB_FILE'"
PYTHON=${EQUIVREPAIR_PYTHON:-python3}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
"$PYTHON" - "$ONNX_FILE" "$VNNLIB_FILE" <<'PY'
import sys
from equivrepair.nets.load import load_network
from equivrepair.spec.vnnlib import read_vnnlib
net = load_network(sys.argv[1])
read_vnnlib(sys.argv[2], n_inputs=net.n_inputs, n_outputs=net.n_outputs)
PY
exit $?
