#!/bin/bash
# VNN-COMP run_instance.sh for equivrepair: decides the property and writes the result file.
# usage: run_instance.sh v1 CATEGORY ONNX VNNLIB RESULTS_FILE TIMEOUT
# The result file holds unsat, sat followed by the counterexample ((X_0 v) ... (Y_0 v) ...),
# timeout or unknown (error when the instance cannot be read).
TOOL_NAME=equivrepair
VERSION_STRING=v1
if [ "$1" != "$VERSION_STRING" ]; then
    echo "Expected first argument (version string) '$VERSION_STRING', got '$1'"
    exit 1
fi
CATEGORY=$2
ONNX_FILE=$3
VNNLIB_FILE=$4
RESULTS_FILE=$5
TIMEOUT=$6
echo "Running $TOOL_NAME on category '$CATEGORY' with onnx '$ONNX_FILE', vnnlib '$VNNLIB_FILE', results '$RESULTS_FILE', timeout $TIMEOUT"
PYTHON=${EQUIVREPAIR_PYTHON:-python3}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
# leave a second of the budget for start-up and writing
BUDGET=$("$PYTHON" -c "import sys; t=float(sys.argv[1]); print(max(t - 1.0, 0.5 * t))" "$TIMEOUT")
"$PYTHON" -m equivrepair.cli vnnlib "$ONNX_FILE" "$VNNLIB_FILE" --timeout "$BUDGET" --result "$RESULTS_FILE"
RC=$?
if [ ! -s "$RESULTS_FILE" ]; then
    echo "error" > "$RESULTS_FILE"
fi
# exit codes of the vnnlib command: 0 unsat, 1 sat, 2 timeout/unknown, 3 input error
if [ $RC -le 2 ]; then exit 0; fi
exit $RC
