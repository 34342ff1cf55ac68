"""Packaging beyond pyproject.toml: the top-level `conf/` and the DeepSpeed JSONs ship inside the wheel.

`conf/` stays at the top of the repository; the wheel maps it into the package as `grit_exp/conf`
(`hydra_app.CONF_DIR` uses that copy when no checkout is around), and `launchers/deepspeed/*.json` as
`grit_exp/launchers/deepspeed/`, next to it, so `cluster.deepspeed_config=launchers/deepspeed/zero2.json`
resolves against `CONF_DIR.parent` in a checkout and in an installed wheel alike. An editable install
(`pip install -e .`) reads both from the checkout.

Left out: everything else (metadata, dependencies, tool settings), which is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages("src", include=["grit_exp*", "hydra_plugins*"]),
              "grit_exp.conf", "grit_exp.launchers"],
    package_dir={"": "src", "grit_exp.conf": "conf", "grit_exp.launchers": "launchers"},
    package_data={"grit_exp": ["py.typed"], "grit_exp.conf": ["**/*.yaml"],
                  "grit_exp.launchers": ["deepspeed/*.json"]},
)
