"""d2timm: explicit detectron2 backbones generated from timm models.

Install for development with ``make install`` (see README.md): it creates .venv with
torch, detectron2 and the pinned tools, then installs this package in editable mode.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent


def requirements(name):
    lines = (ROOT / "requirements" / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


setup(
    name="d2timm",
    version="0.1.0",
    description="Generate explicit, reviewable detectron2 backbones from timm models",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=["generator", "generator.templates", "generated"],
    package_dir={"generator.templates": "templates"},
    package_data={
        "generator.templates": ["*.j2", "*/*.j2", "*/*/*.j2"],
        "generated": ["MANIFEST.json", "SUPPORT.md", "*/*.py"],
    },
    include_package_data=False,
    # torch and torchvision are installed from requirements/torch.txt and detectron2 by
    # tools/install_detectron2.py: neither can be expressed as a plain dependency here.
    install_requires=requirements("base.txt"),
    entry_points={"console_scripts": ["d2timm-gen = generator.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
