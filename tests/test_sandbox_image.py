"""The local agent image: built by ``docker import`` from a rootfs plus the SDK, labelled with the SDK's hash.

The build test imports a tiny stand-in rootfs into a throw-away tag (no
debootstrap, no container started) and reads the SDK back out of it.
"""

from __future__ import annotations

import io
import tarfile
import uuid

import docker.errors
import pytest
from test_sandbox_support import dummy_sdk, require_docker

from engine.sandbox.image import SDK_LABEL, image_status, prepare_image, sdk_hash


def _sdk(tmp_path, text: str):
    sdk = tmp_path / f"sdk-{uuid.uuid4().hex[:6]}"
    (sdk / "symbi_agent").mkdir(parents=True)
    (sdk / "symbi_agent" / "__init__.py").write_text(text)
    (sdk / "symbi_agent" / "__pycache__").mkdir()
    (sdk / "symbi_agent" / "__pycache__" / "x.pyc").write_bytes(b"ignored")
    return sdk


def test_sdk_hash_follows_the_sources_only(tmp_path):
    a, b, c = _sdk(tmp_path, "A = 1\n"), _sdk(tmp_path, "A = 1\n"), _sdk(tmp_path, "A = 2\n")
    assert sdk_hash(a) == sdk_hash(b) != sdk_hash(c)
    (b / "symbi_agent" / "__pycache__" / "y.pyc").write_bytes(b"more")
    assert sdk_hash(a) == sdk_hash(b)


def test_image_built_from_a_rootfs_carries_the_sdk_and_labels(tmp_path):
    client = require_docker()
    rootfs = tmp_path / "rootfs"
    for rel in ("usr/bin", "usr/lib/python3.11/json", "opt", "run", "var/lib/apt/lists"):
        (rootfs / rel).mkdir(parents=True)
    (rootfs / "usr/bin/python3").write_text("#!/bin/false\n")
    (rootfs / "usr/lib/python3.11/json/__init__.py").write_text("")
    (rootfs / "var/lib/apt/lists/huge-index").write_text("x" * 1000)
    sdk = _sdk(tmp_path, "VERSION = 'test'\n")
    tag = f"symbi-sbxtest-{uuid.uuid4().hex[:8]}:latest"
    said: list[str] = []
    try:
        prepare_image(tag, rootfs=rootfs, sdk_dir=sdk, client=client, say=said.append)
        assert said[0] == f"image {tag} not found" and said[-1].startswith(f"built {tag}")
        image = client.images.get(tag)
        config = image.attrs["Config"]
        assert image.labels[SDK_LABEL] == sdk_hash(sdk)
        assert "PYTHONPATH=/opt/symbi/sdk" in config["Env"]
        assert config["WorkingDir"] == "/work" and config["User"] == "65534:65534"
        assert image_status(client, tag, sdk)[0] == "ok"
        assert image_status(client, tag, dummy_sdk(tmp_path))[0] == "stale"
        container = client.containers.create(tag, ["python3"])
        try:
            stream, _ = container.get_archive("/opt/symbi/sdk/symbi_agent/__init__.py")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                assert tar.extractfile("__init__.py").read() == b"VERSION = 'test'\n"
            with pytest.raises(docker.errors.NotFound):  # apt lists are left out of the image
                container.get_archive("/var/lib/apt/lists/huge-index")
            container.get_archive("/work")  # the workspace mount point exists
        finally:
            container.remove(force=True)
        said.clear()
        prepare_image(tag, rootfs=rootfs, sdk_dir=sdk, client=client, say=said.append)
        assert len(said) == 1 and said[0].endswith(f"SDK {sdk_hash(sdk)}): up to date")
    finally:
        client.images.remove(tag, force=True)


def test_missing_image_status(tmp_path):
    client = require_docker()
    assert image_status(client, "symbi-no-such-image:never", None) == (
        "missing",
        "image symbi-no-such-image:never not found",
    )
