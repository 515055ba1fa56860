# Copyright (c) xctrs-monai contributors
# Licensed under the Apache License, Version 2.0
"""What the MONAI model zoo's CI runs on a bundle, run here on ours (the idea of the zoo's ``ci/unit_tests``).

The zoo checks the metadata against its schema, the network's input/output shapes against the metadata
(``verify_net_in_out``), the TorchScript export of ``model.pt`` (``ckpt_export``) and the properties of the
workflows (``ConfigWorkflow(...).check_properties()``). The networks here are the 16^3 test override.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from packaging.version import Version

from monai.bundle import ConfigParser, ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out

import xctrs_monai

pytestmark = pytest.mark.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundle"
CONFIGS = BUNDLE / "configs"
META = str(CONFIGS / "metadata.json")
SCHEMA = "meta_schema_20240725.json"
TINY_META = {
    "_meta_#network_data_format#inputs#image#spatial_shape": [16, 16],
    "_meta_#network_data_format#outputs#pred#spatial_shape": [16, 16, 16],
}


def _schema() -> str:
    """The zoo's metadata schema: ``$XCTRS_META_SCHEMA``, or the project's shared copy next to the checkout."""
    candidates = [os.environ.get("XCTRS_META_SCHEMA", "")]
    candidates += [str(REPO.parents[k] / "shared" / "zoo" / SCHEMA) for k in (0, 1)]
    for path in candidates:
        if path and os.path.isfile(path):
            return path
    pytest.skip(f"{SCHEMA} not found (set XCTRS_META_SCHEMA to a copy; the zoo's CI downloads it)")


def test_verify_metadata_against_zoo_schema(tmp_path):
    verify_metadata(meta_file=META, filepath=_schema())
    meta = json.loads(Path(META).read_text())
    meta["network_data_format"]["inputs"]["image"]["num_channels"] = "two"  # the check can fail
    (tmp_path / "bad.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="num_channels|'two'"):
        verify_metadata(meta_file=str(tmp_path / "bad.json"), filepath=_schema())


def test_requirements_and_version():
    meta = json.loads(Path(META).read_text())
    required = meta["required_packages_version"]
    assert required["xctrs-monai"] == xctrs_monai.__version__  # one version, read by setuptools too
    apps = meta["supported_apps"]
    assert apps.pop("xctrs-infer") == xctrs_monai.__version__
    # the app SDKs at the versions their environments pin (integrations/*/requirements*.txt)
    files = (REPO / "integrations/monailabel/requirements-nodeps.txt", REPO / "integrations/deploy/requirements.txt")
    pins = [p for f in files for p in f.read_text().split() if p.startswith(("monailabel==", "monai-deploy-app-sdk=="))]
    assert apps == dict(p.split("==") for p in pins)
    assert "numpy" not in required and "torch" not in required  # given once, as numpy_version/pytorch_version
    # the zoo's CI pins numpy_version exactly on Python 3.10; numpy 2.3 dropped Python 3.10
    assert Version(meta["numpy_version"]) < Version("2.3")
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'attr = "xctrs_monai.__version__"' in pyproject
    # measured figures, each named after the configuration that produced it, the prior's beside the model's
    metrics = meta["eval_metrics"]
    assert metrics and all(isinstance(v, (int, float)) for v in metrics.values())
    for key in metrics:
        config = {"quick_demo": "quick.json", "cpu_json": "cpu.json"}[key.split("_fold")[0]]
        assert (CONFIGS / config).is_file(), key
        assert key.replace("_model_", "_prior_") in metrics and key.replace("_prior_", "_model_") in metrics, key


def test_bundle_files():
    for name in ("LICENSE", "large_files.yml", "docs/README.md", "docs/data_license.txt", "configs/logging.conf"):
        assert (BUNDLE / name).is_file(), name
    train = json.loads((CONFIGS / "train.json").read_text())
    assert train["bundle_root"] == "." and train["dataset_dir"].startswith("$@bundle_root + ")
    assert train["training"] == "@run"


@pytest.mark.parametrize("config", ["train.json", "inference.json"])
def test_verify_net_in_out(tiny_config, config):
    verify_net_in_out(net_id="network_def", meta_file=META, config_file=[str(CONFIGS / config), tiny_config()],
                      device="cpu", **TINY_META)


def test_ckpt_export(tmp_path, tiny_config):
    configs = [str(CONFIGS / "inference.json"), tiny_config()]
    parser = ConfigParser()
    parser.read_config(configs)
    net = parser.get_parsed_content("network_def")
    torch.save(net.state_dict(), tmp_path / "model.pt")
    ckpt_export(net_id="network_def", filepath=str(tmp_path / "model.ts"), ckpt_file=str(tmp_path / "model.pt"),
                meta_file=META, config_file=configs, **TINY_META)
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    image = torch.rand(1, 2, 16, 16)
    with torch.no_grad():
        assert torch.allclose(scripted(image), net.eval()(image), atol=1e-6)  # float32 rounding only


def _check(workflow_type: str, configs: list[str], **override) -> list | None:
    workflow = ConfigWorkflow(workflow_type=workflow_type, config_file=configs, meta_file=META, logging_file=False,
                              **override)
    workflow.initialize()
    return workflow.check_properties()


def test_check_properties_train_and_evaluate(tiny_config):
    override = json.loads(Path(tiny_config()).read_text())
    assert _check("train", [str(CONFIGS / "train.json")], **override) == []
    # evaluate.json overrides train.json, so the zoo checks it as a "train" workflow too
    assert _check("train", [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")], **override) == []


def test_check_properties_inference(tmp_path, tiny_config):
    configs = [str(CONFIGS / "inference.json"), tiny_config()]
    parser = ConfigParser()
    parser.read_config(configs)
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp_path / "model.pt")
    override = {"bundle_root": str(tmp_path), "ckpt_path": str(tmp_path / "model.pt"),
                "ap_image": str(tmp_path / "ap.png"), "la_image": str(tmp_path / "la.png")}
    assert _check("infer", configs, **override) == []
