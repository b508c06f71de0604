"""flow-zoo: a Keras 3 model zoo of normalizing flows across dimensions."""

from setuptools import find_packages, setup

setup(
    name="flow-zoo",
    version="0.1.0",
    description="Keras 3 / TensorFlow normalizing flows across dimensions: GLOW, NIF, InjFlow, DNF, manifold-prior flows.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["layers", "zoo", "zoo.*", "export"]),
    package_data={"zoo.presets": ["parameters.json", "compute.json", "shipped.json", "shipped/*/*.h5",
                                  "shipped/*/*.json", "shipped/*/.flow_zoo.json"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "tensorflow-probability>=0.25,<0.26",
        "tf-keras>=2.21,<2.22",
        "tensorflow-datasets>=4.9",
        "absl-py>=2.1",
        "tensorboard>=2.21,<2.22",
        "numpy>=2.0",
        "scipy>=1.13",
        "scikit-learn>=1.5",
        "pillow>=10.0",
        "matplotlib>=3.8",
        "umap-learn>=0.5",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "ai-edge-litert>=2.3"],
        "litert": ["ai-edge-litert>=2.3"],
        "jax": ["jax>=0.10", "jaxlib>=0.10"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
