#!/bin/sh
# Records the golden cases of bin/berth/src/golden.rs: for each case, the Engine API answer
# (response.json, fetched with curl from the same daemon) and what the real docker CLI
# printed for it (expected.txt). Recorded on 2026-11-30 against Debian's dockerd
# 20.10.24 (API 1.41) with /usr/local/bin/docker 28.2.2, private daemon:
#   DOCKER_HOST=unix:///tmp/cli-dev/d.sock sh record.sh
# State at recording time: containers "web" (exited, label a=b, sleep 1000), "done"
# (exited 2, long sh -c command), "vols" (exited 0, a named volume), "binds" (a bind mount;
# one mount each: the daemon lists several mounts in Go map order);
# images busybox:latest, imp:1 and one untagged import. Only columns that do not depend
# on the wall clock are recorded (CREATED columns are relative to "now").
set -eu
sock=${DOCKER_HOST#unix://}
api() { curl -s --unix-socket "$sock" "http://docker/v1.41$1"; }
case_dir() { mkdir -p "$1"; printf '%s\n' "$2" > "$1/args.txt"; }
# args.txt says which command line each case reproduces (for people; golden.rs has the table).

case_dir ps_table_without_times 'ps -a -s --format table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}'
api '/containers/json?all=1&size=1' > ps_table_without_times/response.json
docker ps -a -s --format 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}' > ps_table_without_times/expected.txt

case_dir ps_no_trunc_labels_mounts 'ps -a --no-trunc --format table {{.ID}}\t{{.Command}}\t{{.Labels}}\t{{.Mounts}}\t{{.LocalVolumes}}\t{{.Networks}}\t{{.State}}'
api '/containers/json?all=1' > ps_no_trunc_labels_mounts/response.json
docker ps -a --no-trunc --format 'table {{.ID}}\t{{.Command}}\t{{.Labels}}\t{{.Mounts}}\t{{.LocalVolumes}}\t{{.Networks}}\t{{.State}}' > ps_no_trunc_labels_mounts/expected.txt

case_dir ps_raw_template 'ps -a --format {{.Names}}: {{upper .State}} {{json .Labels}} {{.Command}}'
api '/containers/json?all=1' > ps_raw_template/response.json
docker ps -a --format '{{.Names}}: {{upper .State}} {{json .Labels}} {{.Command}}' > ps_raw_template/expected.txt

case_dir images_table_without_times 'images --format table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}'
api '/images/json' > images_table_without_times/response.json
docker images --format 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}' > images_table_without_times/expected.txt

case_dir images_digests_no_trunc 'images --digests --no-trunc --format table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}'
api '/images/json' > images_digests_no_trunc/response.json
docker images --digests --no-trunc --format 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}' > images_digests_no_trunc/expected.txt

case_dir inspect_container 'inspect web'
api '/containers/web/json' > inspect_container/response.json
docker inspect web > inspect_container/expected.txt

case_dir inspect_image 'image inspect busybox'
api '/images/busybox/json' > inspect_image/response.json
docker image inspect busybox > inspect_image/expected.txt

case_dir inspect_container_template 'inspect -f {{.Name}} {{.State.Status}} {{json .Config.Cmd}} {{.Config.Labels}} {{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}{{index .Config.Labels "a"}} {{len .Config.Env}} {{.HostConfig.Init}} vols'
api '/containers/vols/json' > inspect_container_template/response.json
docker inspect -f '{{.Name}} {{.State.Status}} {{json .Config.Cmd}} {{.Config.Labels}} {{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}{{index .Config.Labels "a"}} {{len .Config.Env}} {{.HostConfig.Init}}' vols > inspect_container_template/expected.txt

case_dir info_server 'info (the Server: section only; the Client: section names the CLI)'
api '/info' > info_server/response.json
docker info 2>/dev/null | sed -n '/^Server:$/,$p' | tail -n +2 > info_server/expected.txt
