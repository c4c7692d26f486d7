#!/usr/bin/env python3
"""docker-py against a Docker Engine API daemon: the calls everyday programs make.

Run by tests/e2e/tests/docker_py.rs against a private dockerd (to prove these expectations
are Docker's) and a private berthd, with DOCKER_HOST pointing at the daemon and an image
busybox:latest (busybox-static, CMD ["sh"]) already present. Prints one line per check,
"ok NAME" or "FAIL NAME: why", and exits 1 if any check failed.

Usage: DOCKER_HOST=unix:///path/to.sock python3 compat_checks.py [CHECK...]
"""

import sys
import time
import traceback

import docker
import docker.errors

CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


@check
def version(client):
    info = client.version()
    expect(info.get("ApiVersion"), f"no ApiVersion in {info}")
    expect(info.get("Os") == "linux", f"Os is {info.get('Os')!r}")
    # version=auto negotiated the daemon's newest API version.
    expect(client.api.api_version == info["ApiVersion"],
           f"client uses {client.api.api_version}, daemon says {info['ApiVersion']}")


@check
def ping(client):
    expect(client.ping() is True, "ping did not return True")


@check
def images_list(client):
    tags = [tag for image in client.images.list() for tag in image.tags]
    expect("busybox:latest" in tags, f"busybox:latest not in {tags}")
    image = client.images.get("busybox")
    expect(image.id.startswith("sha256:"), f"image id {image.id!r}")
    expect(image.attrs["Config"]["Cmd"] == ["sh"], f"Cmd {image.attrs['Config']['Cmd']!r}")


@check
def run_remove_returns_output(client):
    output = client.containers.run("busybox", "echo hi", remove=True)
    expect(output == b"hi\n", f"output {output!r}")


@check
def run_nonzero_exit_raises_container_error(client):
    try:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    except docker.errors.ContainerError as error:
        expect(error.exit_status == 3, f"exit status {error.exit_status}")
        expect(b"bad" in (error.stderr or b""), f"stderr {error.stderr!r}")
    else:
        raise AssertionError("no ContainerError")


@check
def run_detached_logs_stop_remove(client):
    container = client.containers.run(
        "busybox", ["sh", "-c", "echo started; exec sleep 100"], detach=True, name="pydetached")
    try:
        expect(len(container.id) == 64, f"id {container.id!r}")
        container.reload()
        expect(container.status == "running", f"status {container.status}")
        expect(container.name == "pydetached", f"name {container.name}")
        deadline = time.time() + 30
        logs = b""
        while time.time() < deadline and b"started" not in logs:
            logs = container.logs()
            time.sleep(0.05)
        expect(logs == b"started\n", f"logs {logs!r}")
        listed = [c.name for c in client.containers.list()]
        expect("pydetached" in listed, f"not listed: {listed}")
        container.stop(timeout=1)
        container.reload()
        expect(container.status == "exited", f"status after stop {container.status}")
        result = container.wait()
        expect(result["StatusCode"] == 137, f"wait {result}")
    finally:
        container.remove(force=True)
    names = [c.name for c in client.containers.list(all=True)]
    expect("pydetached" not in names, f"still listed after remove: {names}")


@check
def exec_run_output_and_exit_code(client):
    container = client.containers.run("busybox", ["sleep", "100"], detach=True)
    try:
        result = container.exec_run(["sh", "-c", "echo from-exec; exit 4"])
        expect(result.exit_code == 4, f"exit code {result.exit_code}")
        expect(result.output == b"from-exec\n", f"output {result.output!r}")
    finally:
        container.remove(force=True)


@check
def missing_container_raises_not_found(client):
    try:
        client.containers.get("nosuch")
    except docker.errors.NotFound as error:
        expect(error.status_code == 404, f"status {error.status_code}")
        expect("No such container: nosuch" in str(error), f"text {error}")
    else:
        raise AssertionError("no NotFound")


@check
def missing_image_raises_image_not_found(client):
    try:
        client.images.get("nosuch:latest")
    except docker.errors.ImageNotFound as error:
        expect(error.status_code == 404, f"status {error.status_code}")
    else:
        raise AssertionError("no ImageNotFound")


@check
def run_missing_image_raises_image_not_found(client):
    # containers.run creates, gets 404 for the image, pulls it (no registry here), and
    # reports the failure as ImageNotFound or APIError; never a hang or a crash.
    try:
        client.containers.run("nosuch.invalid/nosuch:latest", "true", remove=True)
    except (docker.errors.ImageNotFound, docker.errors.APIError):
        pass
    else:
        raise AssertionError("running a missing image did not fail")


def main(argv):
    client = docker.from_env(version="auto", timeout=120)
    selected = [c for c in CHECKS if len(argv) < 2 or c.__name__ in argv[1:]]
    failed = 0
    for function in selected:
        try:
            function(client)
        except Exception as error:  # noqa: BLE001 - every failure is reported, not raised
            failed += 1
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            print(f"FAIL {function.__name__}: {detail}", flush=True)
        else:
            print(f"ok {function.__name__}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
