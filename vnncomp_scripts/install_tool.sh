#!/bin/bash
# VNN-COMP install_tool.sh for equivrepair: install the package (and its dependencies) from this checkout.
# usage: install_tool.sh v1
set -e
TOOL_NAME=equivrepair
VERSION_STRING=v1
if [ "$1" != "$VERSION_STRING" ]; then
    echo "Expected first argument (version string) '$VERSION_STRING', got '$1'"
    exit 1
fi
DIR=$(dirname "$(dirname "$(realpath "$0")")")
PYTHON=${EQUIVREPAIR_PYTHON:-python3}
echo "Installing $TOOL_NAME from $DIR with $PYTHON"
"$PYTHON" -m pip install -e "$DIR"
"$PYTHON" -c "import equivrepair, onnxruntime, highspy; print('equivrepair', equivrepair.__version__)"
