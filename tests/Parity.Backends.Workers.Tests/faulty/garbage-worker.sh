#!/usr/bin/env bash
# A "worker" that prints a banner on stdout instead of the ready line: the classic mistake of logging to stdout.
echo "Using TensorFlow backend."
sleep 5
