#!/bin/sh
# Captures dockerd's real config.json for a container created with the given flags, with
# the container's Config/HostConfig/Path/Args from `docker inspect`, into test_data/<case>/.
# Needs a private dockerd (see README.md) whose daemon.json declares a runtime "capture"
# pointing at a wrapper that copies <bundle>/config.json to $CAPTURES/<id>.json and then
# execs runc. Usage: capture.sh <case> <docker create flags...> busybox true
set -eu
case_name=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
: "${CAPTURES:=/tmp/pure/captures}"
id=$(docker create --runtime capture "$@")
docker inspect "$id" > "$CAPTURES/$id.inspect.json"
docker start "$id" >/dev/null 2>&1 || true
docker rm -f "$id" >/dev/null
mkdir -p "$here/$case_name"
python3 "$here/normalize.py" "$id" "$CAPTURES/$id.json" "$CAPTURES/$id.inspect.json" "$here/$case_name"
