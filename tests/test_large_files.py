# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from monai.apps import HashCheckError

from xctrs_monai.large_files import download_large_files, read_large_files, require_large_file
from xctrs_monai.losses import VGG16Features

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"
VGG = "models/vgg16-397923af.pth"


def _bundle(tmp_path: Path, source: Path, sha256: str) -> Path:
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "large_files.yml").write_text(
        f'large_files:\n- path: "{VGG}"\n  url: "{source.as_uri()}"\n  hash_val: "{sha256}"\n  hash_type: "sha256"\n'
    )
    return root


def test_bundle_lists_torchvision_vgg16():
    (entry,) = read_large_files(str(BUNDLE))
    assert entry["path"] == VGG and entry["url"] == "https://download.pytorch.org/models/vgg16-397923af.pth"
    # torchvision names its files after the first 8 hex digits of the file's SHA-256
    assert entry["hash_type"] == "sha256" and len(entry["hash_val"]) == 64
    assert entry["hash_val"].startswith(Path(VGG).stem.split("-")[1])


def test_download_checks_hash_and_keeps_present_files(tmp_path, small_vgg_file):
    source = small_vgg_file(tmp_path / "server" / "vgg.pth")
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    root = _bundle(tmp_path, source, sha256)
    with pytest.raises(FileNotFoundError, match=rf"(?s){VGG}.*{source.as_uri()}.*--bundle_root {root}"):
        require_large_file(str(root), VGG, purpose="VGG16 weights")
    assert download_large_files(str(root)) == [str(root / VGG)]
    assert require_large_file(str(root), VGG) == str(root / VGG)
    # the file loads where the loss uses it
    vgg = VGG16Features(layers="relu2_2", weights_path=require_large_file(str(root), VGG))
    assert torch.equal(vgg.features[0].weight, torch.load(source, weights_only=True)["features.0.weight"])
    mtime = os.stat(root / VGG).st_mtime_ns
    download_large_files(str(root))  # present with the right hash: kept
    assert os.stat(root / VGG).st_mtime_ns == mtime
    with pytest.raises(ValueError, match="not listed"):
        download_large_files(str(root), paths=["models/other.pt"])


def test_download_refuses_wrong_hash(tmp_path, small_vgg_file):
    source = small_vgg_file(tmp_path / "server" / "vgg.pth")
    root = _bundle(tmp_path, source, "0" * 64)
    with pytest.raises(HashCheckError, match="sha256"):
        download_large_files(str(root))
    assert not (root / VGG).exists()  # a file that fails its hash never lands in the bundle


def test_command_line(tmp_path, small_vgg_file):
    source = small_vgg_file(tmp_path / "server" / "vgg.pth")
    root = _bundle(tmp_path, source, hashlib.sha256(source.read_bytes()).hexdigest())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BUNDLE.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "xctrs_monai.large_files", "--bundle_root", str(root)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (root / VGG).read_bytes() == source.read_bytes()


@pytest.mark.parametrize("text", ["other: 1\n", "large_files:\n- path: a.pt\n"])
def test_malformed_list_names_the_file(tmp_path, text):
    (tmp_path / "large_files.yml").write_text(text)
    with pytest.raises(ValueError, match="large_files.yml"):
        read_large_files(str(tmp_path))
