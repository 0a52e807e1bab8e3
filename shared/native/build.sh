#!/bin/sh
# Builds the amitystate Redis module: shared/native/build.sh OUTPUT.so [extra gcc flags...]
# e.g. shared/native/build.sh /tmp/amity_state.so, or with -fsanitize=address -g for a debug build.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTPUT.so [extra gcc flags...]}
shift
exec gcc -O2 -Wall -Wextra -fPIC -shared -o "$out" "$here/amity_state.c" "$@" -lm
